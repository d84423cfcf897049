package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/secret"
)

// Cloud Connect pages: the list, the step-by-step new connection (credentials
// -> verification checklist and storage picker -> save) and a connection's
// page (re-verify, roots, Slack webhook, credentials, delete). Every action
// is a call on the same Connections service the JSON API uses.

const connectionsMenu = "/admin/connections"

// storageSettingsNote points the admin at what makes an iconik storage
// selectable (CONTRACT.md §2.2): where to change it in iconik.
const storageSettingsNote = "A storage can be chosen when, in iconik (Admin > Storages, the storage's settings), " +
	"its Purpose is Files, its Method is S3, Google Cloud Storage, Azure or Backblaze B2, its status is Active, " +
	"and its Read, Write and Delete settings are on."

// connectionsPage lists the connections with their state, storage and roots.
func (s *Server) connectionsPage(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	list, err := svc.List(r.Context())
	if err != nil {
		return connectError(err)
	}
	out := make([]Connection, 0, len(list))
	for _, c := range list {
		out = append(out, s.withSlackFailure(r.Context(), wireConnection(c)))
	}
	return s.consolePage(w, r, http.StatusOK, "connections/list", "Cloud Connect", connectionsMenu, out)
}

// connectionDraft is the new-connection form as it travels between steps.
// The token never travels back to the browser in clear: see sealToken.
type connectionDraft struct {
	Name, BaseURL, AppID, StorageID, PortalRoot, SendRoot string
	SealedToken                                           string
}

// connectionNewData is the new-connection page: step 1 (credentials) alone,
// or with the verification (step 2: checklist, storage picker, save form).
type connectionNewData struct {
	Draft        connectionDraft
	Verification *Verification
	Note         string
}

func (s *Server) connectionNewPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.connections(); err != nil {
		return err
	}
	d := connectionNewData{Draft: connectionDraft{BaseURL: iconik.DefaultBaseURL}}
	return s.consolePage(w, r, http.StatusOK, "connections/new", "New iconik connection", connectionsMenu, d)
}

// connectionNewVerify is step 1's post: check the credentials and show the
// checklist and storage picker (nothing is saved).
func (s *Server) connectionNewVerify(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	d := connectionDraft{BaseURL: strings.TrimSpace(r.PostFormValue("base_url")), AppID: strings.TrimSpace(r.PostFormValue("app_id"))}
	tok := secret.New(strings.TrimSpace(r.PostFormValue("token")))
	if tok.IsZero() {
		// A re-verification from step 2 brings the sealed token instead.
		if tok, err = s.openToken(r, r.PostFormValue("sealed_token")); err != nil {
			return s.consoleForm(w, r, err, "connections/new", "New iconik connection", connectionsMenu, connectionNewData{Draft: d})
		}
	}
	return s.renderVerified(w, r, svc, d, tok, nil)
}

// renderVerified verifies the credentials and shows step 2, with refusal
// (a failed save) inline when set; a verification that fails shows step 1
// again with iconik's answer.
func (s *Server) renderVerified(w http.ResponseWriter, r *http.Request, svc Connections, d connectionDraft, tok secret.Value, refusal error) error {
	const page, title = "connections/new", "New iconik connection"
	rep, err := svc.Verify(r.Context(), connect.Params{BaseURL: d.BaseURL, AppID: d.AppID, Token: tok})
	if err != nil {
		return s.consoleForm(w, r, connectError(err), page, title, connectionsMenu, connectionNewData{Draft: d})
	}
	if d.SealedToken, err = s.sealToken(r, tok); err != nil {
		return err
	}
	v := wireVerification(rep)
	selectableFirst(v.Storages)
	if d.StorageID == "" {
		for _, st := range v.Storages {
			if st.Selectable {
				d.StorageID = st.ID
				break
			}
		}
	}
	if d.PortalRoot == "" {
		d.PortalRoot = connect.DefaultPortalRoot
	}
	if d.SendRoot == "" {
		d.SendRoot = connect.DefaultSendRoot
	}
	data := connectionNewData{Draft: d, Verification: &v, Note: storageSettingsNote}
	if refusal != nil {
		return s.consoleForm(w, r, refusal, page, title, connectionsMenu, data)
	}
	return s.consolePage(w, r, http.StatusOK, page, title, connectionsMenu, data)
}

// selectableFirst orders the storage picker: the storages that can be
// chosen first, each group in iconik's order.
func selectableFirst(st []IconikStorage) {
	slices.SortStableFunc(st, func(a, b IconikStorage) int {
		switch {
		case a.Selectable == b.Selectable:
			return 0
		case a.Selectable:
			return -1
		}
		return 1
	})
}

// connectionCreatePost is step 2's post: save the connection (the service
// verifies everything again before it stores anything).
func (s *Server) connectionCreatePost(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	d := connectionDraft{
		Name: strings.TrimSpace(r.PostFormValue("name")), BaseURL: r.PostFormValue("base_url"), AppID: r.PostFormValue("app_id"),
		StorageID: r.PostFormValue("storage_id"), PortalRoot: strings.TrimSpace(r.PostFormValue("portal_root")),
		SendRoot: strings.TrimSpace(r.PostFormValue("send_root")),
	}
	tok, err := s.openToken(r, r.PostFormValue("sealed_token"))
	if err != nil {
		return s.consoleForm(w, r, err, "connections/new", "New iconik connection", connectionsMenu, connectionNewData{Draft: d})
	}
	c, err := svc.Create(r.Context(), connect.Input{
		Name:      d.Name,
		Params:    connect.Params{BaseURL: d.BaseURL, AppID: d.AppID, Token: tok},
		StorageID: d.StorageID, PortalRoot: d.PortalRoot, SendRoot: d.SendRoot,
		SlackWebhookURL: secret.New(strings.TrimSpace(r.PostFormValue("slack_webhook_url"))),
	})
	if err != nil {
		if connect.AsError(err) == nil {
			return err
		}
		return s.renderVerified(w, r, svc, d, tok, connectError(err))
	}
	return seeOther(w, r, "/admin/connections/"+c.ID, "Connection "+c.Name+" saved.")
}

// connectionPageData is a connection's page.
type connectionPageData struct {
	Connection   Connection
	Verification *Verification // after a re-verification that found problems
	Form         struct{ Name, PortalRoot, SendRoot, BaseURL, AppID string }
}

func (s *Server) connectionPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.connectionData(r)
	if err != nil {
		return err
	}
	return s.consolePage(w, r, http.StatusOK, "connections/show", d.Connection.Name, connectionsMenu, d)
}

func (s *Server) connectionData(r *http.Request) (*connectionPageData, error) {
	svc, err := s.connections()
	if err != nil {
		return nil, err
	}
	c, err := svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, connectError(err)
	}
	d := &connectionPageData{Connection: s.withSlackFailure(r.Context(), wireConnection(c))}
	d.Form.Name, d.Form.PortalRoot, d.Form.SendRoot = c.Name, c.PortalRoot, c.SendRoot
	d.Form.BaseURL, d.Form.AppID = c.BaseURL, c.AppID
	return d, nil
}

// connectionRefused shows the connection page again with the refusal inline
// (and what the admin typed, so nothing is lost).
func (s *Server) connectionRefused(w http.ResponseWriter, r *http.Request, refusal error, edit func(*connectionPageData)) error {
	d, err := s.connectionData(r)
	if err != nil {
		return err
	}
	if edit != nil {
		edit(d)
	}
	return s.consoleForm(w, r, refusal, "connections/show", d.Connection.Name, connectionsMenu, d)
}

func (s *Server) connectionReverifyPost(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	c, rep, err := svc.Reverify(r.Context(), r.PathValue("id"))
	if err != nil {
		if connect.AsError(err) == nil {
			return err
		}
		return s.connectionRefused(w, r, connectError(err), nil)
	}
	if c.Broken() {
		// The page shows the new state and reason; the checklist says what is missing.
		d, err := s.connectionData(r)
		if err != nil {
			return err
		}
		if rep != nil {
			v := wireVerification(rep)
			d.Verification = &v
		}
		return s.consoleForm(w, r, errorf(http.StatusConflict, "connection_broken", "%s", "iconik refused the connection: "+c.StateReason),
			"connections/show", d.Connection.Name, connectionsMenu, d)
	}
	return seeOther(w, r, "/admin/connections/"+c.ID, "Verified: the connection works.")
}

// connectionSettingsPost saves the name and the collection roots.
func (s *Server) connectionSettingsPost(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	name, pr, sr := strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("portal_root")), strings.TrimSpace(r.PostFormValue("send_root"))
	c, err := svc.Update(r.Context(), r.PathValue("id"), connect.Update{Name: &name, PortalRoot: &pr, SendRoot: &sr})
	if err != nil {
		if connect.AsError(err) == nil {
			return err
		}
		return s.connectionRefused(w, r, connectError(err), func(d *connectionPageData) {
			d.Form.Name, d.Form.PortalRoot, d.Form.SendRoot = name, pr, sr
		})
	}
	return seeOther(w, r, "/admin/connections/"+c.ID, "Settings saved.")
}

// connectionSlackPost sets or removes the Slack webhook (write-only: the
// page says only whether one is set).
func (s *Server) connectionSlackPost(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	hook, flash := secret.New(strings.TrimSpace(r.PostFormValue("slack_webhook_url"))), "Slack webhook saved."
	if r.PostFormValue("remove") != "" {
		hook, flash = secret.Value{}, "Slack webhook removed."
	} else if hook.IsZero() {
		return s.connectionRefused(w, r, errorf(http.StatusBadRequest, "invalid_slack_webhook_url",
			"Paste the Slack webhook URL to set it, or press Remove to remove the one set."), nil)
	}
	c, err := svc.Update(r.Context(), r.PathValue("id"), connect.Update{SlackWebhookURL: &hook})
	if err != nil {
		if connect.AsError(err) == nil {
			return err
		}
		return s.connectionRefused(w, r, connectError(err), nil)
	}
	return seeOther(w, r, "/admin/connections/"+c.ID, flash)
}

// connectionCredentialsPost replaces the base URL, Application ID and token;
// the service verifies them (roles, storage) before anything is saved.
func (s *Server) connectionCredentialsPost(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	base, app := strings.TrimSpace(r.PostFormValue("base_url")), strings.TrimSpace(r.PostFormValue("app_id"))
	tok := secret.New(strings.TrimSpace(r.PostFormValue("token")))
	c, err := svc.Update(r.Context(), r.PathValue("id"), connect.Update{BaseURL: &base, AppID: &app, Token: &tok})
	if err != nil {
		if connect.AsError(err) == nil {
			return err
		}
		return s.connectionRefused(w, r, connectError(err), func(d *connectionPageData) {
			d.Form.BaseURL, d.Form.AppID = base, app
			if e := connect.AsError(err); e != nil && e.Report != nil {
				v := wireVerification(e.Report)
				d.Verification = &v
			}
		})
	}
	return seeOther(w, r, "/admin/connections/"+c.ID, "Credentials replaced and verified.")
}

// connectionDeletePost deletes a connection; while a portal delivers to it
// the page shows the refusal naming the portals.
func (s *Server) connectionDeletePost(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	c, err := svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return connectError(err)
	}
	if err := svc.Delete(r.Context(), c.ID); err != nil {
		if connect.AsError(err) == nil {
			return err
		}
		return s.connectionRefused(w, r, connectError(err), nil)
	}
	return seeOther(w, r, "/admin/connections", "Connection "+c.Name+" deleted.")
}

// Carrying the token from step 1 to the save step.
//
// The token is a password-grade secret: after Verify, the page must not hold
// it in clear (view-source, a saved page, the browser's form cache or a
// screenshot would show it), and the server keeps no per-visitor state
// between the steps. So step 2 carries it sealed (AES-256-GCM via
// secret.Sealer) with a key derived from the server secret, bound to this
// browser session (its CSRF token, itself derived from the session) and to
// an expiry: the sealed field is useless in another session, after the
// hour, or after a server secret change (the admin then types the token
// again). Re-posting the token in a password field was the alternative, but
// that means rendering it into the page's value attribute.
const sealedTokenTTL = time.Hour

func (s *Server) tokenSealer() (*secret.Sealer, error) {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("ferry console: iconik token between the new-connection steps"))
	return secret.NewSealer(m.Sum(nil))
}

func sealedTokenContext(r *http.Request, exp int64) string {
	return "console/connection-token/" + pageCSRF(r) + "/" + strconv.FormatInt(exp, 10)
}

func (s *Server) sealToken(r *http.Request, tok secret.Value) (string, error) {
	sl, err := s.tokenSealer()
	if err != nil {
		return "", err
	}
	exp := s.now().Add(sealedTokenTTL).Unix()
	sealed, err := sl.Seal(tok, sealedTokenContext(r, exp))
	if err != nil {
		return "", fmt.Errorf("web: sealing the iconik token: %w", err)
	}
	return strconv.FormatInt(exp, 10) + "." + sealed, nil
}

var errSealedToken = errorf(http.StatusBadRequest, "token_expired",
	"The Application Token is no longer held for this form (it expired or the session changed): enter it again and verify.")

func (s *Server) openToken(r *http.Request, v string) (secret.Value, error) {
	expS, sealed, ok := strings.Cut(v, ".")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if !ok || err != nil || sealed == "" || s.now().Unix() > exp {
		return secret.Value{}, errSealedToken
	}
	sl, err := s.tokenSealer()
	if err != nil {
		return secret.Value{}, err
	}
	tok, err := sl.Open(sealed, sealedTokenContext(r, exp))
	if errors.Is(err, secret.ErrOpen) || err == nil && tok.IsZero() {
		return secret.Value{}, errSealedToken
	}
	return tok, err
}
