package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/secret"
)

// Options configure a Service.
type Options struct {
	Store  db.Store
	Sealer *secret.Sealer
	Logger *slog.Logger
	Now    func() time.Time
	// Client is the template of every iconik client the service builds
	// (Transport, RateLimit, retries, ...); BaseURL, AppID and Token are set
	// per connection. Clients of one App-ID share its rate limiter (package
	// iconik keeps one per App-ID per process).
	Client iconik.Options
	// VerifyAttempts bounds the tries of each call while verifying, so a
	// person waiting on the answer learns about an unreachable iconik quickly
	// (default 2).
	VerifyAttempts int
}

// Service manages connections.
type Service struct {
	opt Options
	log *slog.Logger
	now func() time.Time
}

// New returns a Service.
func New(opt Options) (*Service, error) {
	if opt.Store == nil || opt.Sealer == nil {
		return nil, errors.New("connect: Options.Store and Options.Sealer are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.VerifyAttempts <= 0 {
		opt.VerifyAttempts = 2
	}
	return &Service{opt: opt, log: opt.Logger.With("component", "connect"), now: opt.Now}, nil
}

// newClient builds an iconik client for p; verifying bounds its retries.
func (s *Service) newClient(p Params, verifying bool) (*iconik.Client, error) {
	o := s.opt.Client
	o.BaseURL, o.AppID, o.Token = p.BaseURL, p.AppID, p.Token.Reveal()
	if o.Logger == nil {
		o.Logger = s.opt.Logger
	}
	if verifying && (o.MaxAttempts <= 0 || o.MaxAttempts > s.opt.VerifyAttempts) {
		o.MaxAttempts = s.opt.VerifyAttempts
	}
	c, err := iconik.New(o)
	if err != nil {
		// iconik.New names only the base URL, never the token.
		return nil, invalid("base_url", "%v", err)
	}
	return c, nil
}

// Verify checks credentials against iconik: the user, whether it qualifies,
// the roles it lacks and every storage with whether it can be chosen. Bad
// credentials and an unreachable iconik are *Error refusals (4xx/502), not
// failures.
func (s *Service) Verify(ctx context.Context, p Params) (*Report, error) {
	if err := normalizeParams(&p); err != nil {
		return nil, err
	}
	_, rep, err := s.verify(ctx, p)
	return rep, err
}

func (s *Service) verify(ctx context.Context, p Params) (*iconik.Verification, *Report, error) {
	c, err := s.newClient(p, true)
	if err != nil {
		return nil, nil, err
	}
	v, err := c.Verify(ctx)
	if err != nil {
		return nil, nil, iconikError(err, p.BaseURL, "verifying the credentials")
	}
	return v, report(v), nil
}

func report(v *iconik.Verification) *Report {
	r := &Report{Qualifies: v.Qualifies, Reasons: v.Reasons, MissingRoles: v.MissingRoles}
	if u := v.User; u != nil {
		r.User = User{ID: u.ID, Name: u.Name(), Email: u.Email, Type: u.Type, Status: u.Status, IsAdmin: u.IsAdmin}
	}
	for _, st := range v.Storages {
		r.Storages = append(r.Storages, Storage{ID: st.ID, Name: st.Name, Method: st.Method, Purpose: st.Purpose,
			Status: st.Status, Path: st.Setting("path"), AddsUUID: st.Flag("add_uuid_to_filenames"), Selectable: st.Selectable, Reason: st.Reason})
	}
	return r
}

// iconikError turns a failed iconik call into the refusal a person can act
// on. The iconik client's errors name method, path and iconik's messages,
// never the token.
func iconikError(err error, baseURL, doing string) error {
	status := iconik.StatusOf(err)
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case status == http.StatusUnauthorized:
		return refuse(http.StatusBadRequest, "iconik_bad_credentials",
			"iconik at %s refused the Application ID and token (401): check both, and that the token is not revoked.", baseURL)
	case status == http.StatusForbidden:
		return refuse(http.StatusUnprocessableEntity, "iconik_forbidden",
			"iconik at %s refused a call while %s (403): the user lacks a role. %v", baseURL, doing, err)
	case status == http.StatusTooManyRequests:
		return refuse(http.StatusServiceUnavailable, "iconik_rate_limited",
			"iconik at %s is rate limiting this Application ID; try again in a minute.", baseURL)
	case status != 0:
		return refuse(http.StatusBadGateway, "iconik_error", "iconik at %s failed while %s: %v", baseURL, doing, err)
	}
	return refuse(http.StatusBadGateway, "iconik_unreachable",
		"ferry could not reach iconik at %s while %s (%v): check the base URL and the network.", baseURL, doing, rootCause(err))
}

// rootCause is the innermost error: "connection refused", "no such host".
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// gate refuses credentials that cannot deliver to storageID; it returns the
// chosen storage.
func gate(rep *Report, storageID string) (*Storage, error) {
	if !rep.Qualifies {
		e := refuse(http.StatusUnprocessableEntity, "iconik_user_not_qualified",
			"The token's iconik user cannot be used: %s.", strings.Join(rep.Reasons, "; "))
		e.Report = rep
		return nil, e
	}
	if len(rep.MissingRoles) > 0 {
		e := refuse(http.StatusUnprocessableEntity, "iconik_roles_missing",
			"The iconik user %s lacks roles ferry needs: %s. Grant them in iconik (Admin > Roles) and try again.",
			rep.User.Name, strings.Join(rep.MissingRoles, ", "))
		e.Report = rep
		return nil, e
	}
	i := slices.IndexFunc(rep.Storages, func(st Storage) bool { return st.ID == storageID })
	if i < 0 {
		e := refuse(http.StatusUnprocessableEntity, "storage_not_found", "iconik has no storage with id %q for this user.", storageID)
		e.Field = "storage_id"
		e.Report = rep
		return nil, e
	}
	st := &rep.Storages[i]
	if !st.Selectable {
		e := refuse(http.StatusUnprocessableEntity, "storage_not_selectable", "%s", st.Reason)
		e.Field = "storage_id"
		e.Report = rep
		return nil, e
	}
	return st, nil
}

// checked is the outcome of every check for one set of credentials and storage.
type checked struct {
	client  *iconik.Client
	rep     *Report
	storage *Storage
	viewID  string
}

// check runs Verify, the gate and the metadata set-up for a connection to be saved.
func (s *Service) check(ctx context.Context, p Params, storageID, viewID string) (*checked, error) {
	v, rep, err := s.verify(ctx, p)
	if err != nil {
		return nil, err
	}
	st, err := gate(rep, storageID)
	if err != nil {
		return nil, err
	}
	c, err := s.newClient(p, true)
	if err != nil {
		return nil, err
	}
	viewID, err = s.descriptionView(ctx, c, v.Roles, viewID, p.BaseURL)
	if err != nil {
		return nil, err
	}
	return &checked{client: c, rep: rep, storage: st, viewID: viewID}, nil
}

// descriptionView finds (or, when the roles allow, creates) the description
// field and a view holding it (CONTRACT.md §2.11): the pinned view when
// given, else a view named "ferry", else any view with the field, else a new
// "ferry" view.
func (s *Service) descriptionView(ctx context.Context, c *iconik.Client, roles []string, pinned, baseURL string) (string, error) {
	can := func(r string) bool { return slices.Contains(roles, r) }
	if _, err := c.MetadataFieldGet(ctx, DescriptionField); iconik.IsNotFound(err) {
		if !can("can_write_metadata_fields") {
			return "", refuse(http.StatusUnprocessableEntity, "metadata_field_missing",
				"iconik has no %q metadata field and the token may not create it (can_write_metadata_fields): create it in iconik or grant the role.", DescriptionField)
		}
		_, err := c.MetadataFieldCreate(ctx, iconik.MetadataFieldCreateParams{Name: DescriptionField, Label: "Description",
			FieldType: "text", Description: "Package, uploader and portal of files ferry delivered"})
		if err != nil {
			// Another ferry may have created it meanwhile: only its absence is an error.
			if _, gerr := c.MetadataFieldGet(ctx, DescriptionField); gerr != nil {
				return "", iconikError(err, baseURL, "creating the description metadata field")
			}
		}
		s.log.Info("created the description metadata field in iconik", "base_url", baseURL)
	} else if err != nil {
		return "", iconikError(err, baseURL, "reading the description metadata field")
	}

	field := iconik.MetadataViewField{Name: DescriptionField, Label: "Description"}
	addField := func(v *iconik.MetadataView) (string, error) {
		if !can("can_write_metadata_views") {
			return "", refuse(http.StatusUnprocessableEntity, "metadata_view_missing_field",
				"iconik metadata view %q lacks the %q field and the token may not change views (can_write_metadata_views).", v.Name, DescriptionField)
		}
		fields := append(slices.Clone(v.ViewFields), field)
		if _, err := c.MetadataViewUpdate(ctx, v.ID, iconik.MetadataViewUpdateParams{Name: v.Name, Description: v.Description, ViewFields: fields}); err != nil {
			return "", iconikError(err, baseURL, "adding the description field to metadata view "+v.Name)
		}
		return v.ID, nil
	}

	if pinned != "" {
		v, err := c.MetadataViewGet(ctx, pinned, iconik.MetadataViewGetParams{})
		if iconik.IsNotFound(err) {
			e := refuse(http.StatusUnprocessableEntity, "metadata_view_not_found", "iconik has no metadata view with id %q.", pinned)
			e.Field = "metadata_view_id"
			return "", e
		}
		if err != nil {
			return "", iconikError(err, baseURL, "reading metadata view "+pinned)
		}
		if v.HasField(DescriptionField) {
			return v.ID, nil
		}
		return addField(v)
	}
	views, err := c.MetadataViewList(ctx)
	if err != nil {
		return "", iconikError(err, baseURL, "listing metadata views")
	}
	var ours, any *iconik.MetadataView
	for i := range views {
		v := &views[i]
		if v.Name == DefaultMetadataView && ours == nil {
			ours = v
		}
		if v.HasField(DescriptionField) && any == nil {
			any = v
		}
	}
	switch {
	case ours != nil && ours.HasField(DescriptionField):
		return ours.ID, nil
	case any != nil:
		return any.ID, nil
	case ours != nil:
		return addField(ours)
	}
	if !can("can_write_metadata_views") {
		return "", refuse(http.StatusUnprocessableEntity, "metadata_view_missing",
			"No iconik metadata view holds the %q field and the token may not create one (can_write_metadata_views).", DescriptionField)
	}
	v, err := c.MetadataViewCreate(ctx, iconik.MetadataViewCreateParams{Name: DefaultMetadataView,
		Description: "Fields ferry fills on delivered assets", ViewFields: []iconik.MetadataViewField{field}})
	if err != nil {
		return "", iconikError(err, baseURL, "creating the ferry metadata view")
	}
	s.log.Info("created the ferry metadata view in iconik", "base_url", baseURL, "view", v.ID)
	return v.ID, nil
}

func tokenContext(id string) string { return "connection/" + id + "/token" }
func slackContext(id string) string { return "connection/" + id + "/slack_webhook_url" }

func (s *Service) toConnection(r *db.Connection) *Connection {
	return &Connection{
		ID: r.ID, Name: r.Name, BaseURL: r.BaseURL, AppID: r.AppID,
		Storage:    StorageRef{ID: r.StorageID, Name: r.StorageName, Method: r.StorageMethod, Path: r.StoragePath, AddsUUID: r.StorageAddsUUID},
		PortalRoot: r.PortalRoot, SendRoot: r.SendRoot, MetadataViewID: r.MetadataViewID, MetadataField: r.MetadataField,
		HasSlackWebhook: r.SlackWebhookSealed != "", IconikUserID: r.IconikUserID, IconikUserEmail: r.IconikUserEmail,
		State: string(r.State), StateReason: r.StateReason, VerifiedAt: r.VerifiedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func nameTaken(name string) *Error {
	e := refuse(http.StatusConflict, "name_taken", "Another connection is already named %q; choose another name.", name)
	e.Field = "name"
	return e
}

// nameFree refuses a taken name before iconik is called (the database's
// unique index still decides races).
func (s *Service) nameFree(ctx context.Context, name, exceptID string) error {
	rows, err := s.opt.Store.ConnectionList(ctx, &db.ConnectionListParams{})
	if err != nil {
		return fmt.Errorf("connect: listing connections: %w", err)
	}
	for _, r := range rows {
		if r.ID != exceptID && strings.EqualFold(r.Name, name) {
			return nameTaken(name)
		}
	}
	return nil
}

// Create verifies in against iconik and saves the connection only if the
// user qualifies, has every role, the storage is selectable and the
// description field and view are in place.
func (s *Service) Create(ctx context.Context, in Input) (*Connection, error) {
	var err error
	if in.Name, err = checkName(in.Name); err != nil {
		return nil, err
	}
	if err := normalizeParams(&in.Params); err != nil {
		return nil, err
	}
	if in.StorageID = strings.TrimSpace(in.StorageID); in.StorageID == "" {
		return nil, invalid("storage_id", "Choose the iconik storage files are delivered to (storage_id).")
	}
	if in.PortalRoot, err = checkRoot("portal_root", in.PortalRoot, DefaultPortalRoot); err != nil {
		return nil, err
	}
	if in.SendRoot, err = checkRoot("send_root", in.SendRoot, DefaultSendRoot); err != nil {
		return nil, err
	}
	if in.SlackWebhookURL, err = checkWebhook(in.SlackWebhookURL); err != nil {
		return nil, err
	}
	if err := s.nameFree(ctx, in.Name, ""); err != nil {
		return nil, err
	}
	ck, err := s.check(ctx, in.Params, in.StorageID, strings.TrimSpace(in.MetadataViewID))
	if err != nil {
		return nil, err
	}
	id := uuid.Must(uuid.NewV7()).String()
	tok, err := s.opt.Sealer.Seal(in.Token, tokenContext(id))
	if err != nil {
		return nil, fmt.Errorf("connect: sealing the token: %w", err)
	}
	hook, err := s.opt.Sealer.Seal(in.SlackWebhookURL, slackContext(id))
	if err != nil {
		return nil, fmt.Errorf("connect: sealing the Slack webhook: %w", err)
	}
	now := s.now()
	row, err := s.opt.Store.ConnectionCreate(ctx, &db.ConnectionCreateParams{
		ID: id, Name: in.Name, BaseURL: in.BaseURL, AppID: in.AppID, TokenSealed: tok,
		StorageID: ck.storage.ID, StorageName: ck.storage.Name, StorageMethod: ck.storage.Method, StoragePath: ck.storage.Path, StorageAddsUUID: ck.storage.AddsUUID,
		PortalRoot: in.PortalRoot, SendRoot: in.SendRoot, MetadataViewID: ck.viewID, MetadataField: DescriptionField,
		SlackWebhookSealed: hook, IconikUserID: ck.rep.User.ID, IconikUserEmail: ck.rep.User.Email,
		State: db.ConnectionOK, VerifiedAt: &now, CreatedAt: now,
	})
	if errors.Is(err, db.ErrConflict) {
		return nil, nameTaken(in.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("connect: saving connection %q: %w", in.Name, err)
	}
	s.log.Info("connection created", "connection", id, "name", in.Name, "base_url", in.BaseURL, "storage", ck.storage.Name)
	return s.toConnection(row), nil
}

func (s *Service) row(ctx context.Context, id string) (*db.Connection, error) {
	r, err := s.opt.Store.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: id})
	if errors.Is(err, db.ErrNotFound) {
		return nil, notFound()
	}
	if err != nil {
		return nil, fmt.Errorf("connect: reading connection %s: %w", id, err)
	}
	return r, nil
}

// Get returns one connection.
func (s *Service) Get(ctx context.Context, id string) (*Connection, error) {
	r, err := s.row(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.toConnection(r), nil
}

// List returns every connection by name.
func (s *Service) List(ctx context.Context) ([]*Connection, error) {
	rows, err := s.opt.Store.ConnectionList(ctx, &db.ConnectionListParams{})
	if err != nil {
		return nil, fmt.Errorf("connect: listing connections: %w", err)
	}
	out := make([]*Connection, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.toConnection(r))
	}
	return out, nil
}

// Exist refuses ids that name no connection, for portals' "Deliver to Cloud".
func (s *Service) Exist(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if _, err := s.row(ctx, id); err != nil {
			if errors.Is(err, ErrNotFound) {
				e := refuse(http.StatusUnprocessableEntity, "unknown_connection", "There is no connection with id %q.", id)
				e.Field = "connection_ids"
				return e
			}
			return err
		}
	}
	return nil
}

func (s *Service) openToken(r *db.Connection) (secret.Value, error) {
	v, err := s.opt.Sealer.Open(r.TokenSealed, tokenContext(r.ID))
	if err != nil {
		return secret.Value{}, fmt.Errorf("connect: opening the token of connection %s (was the server key changed? set FERRY_SECRET_KEY to the old one): %w", r.ID, err)
	}
	return v, nil
}

// Update applies u to connection id. Changing credentials, storage or
// metadata view, or updating a broken connection, runs every check again
// first; nothing is saved unless they pass.
func (s *Service) Update(ctx context.Context, id string, u Update) (*Connection, error) {
	cur, err := s.row(ctx, id)
	if err != nil {
		return nil, err
	}
	tok, err := s.openToken(cur)
	if err != nil {
		return nil, err
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	next := *cur
	p := Params{BaseURL: cur.BaseURL, AppID: cur.AppID, Token: tok}
	set(&next.Name, u.Name)
	set(&p.BaseURL, u.BaseURL)
	set(&p.AppID, u.AppID)
	if u.Token != nil {
		p.Token = *u.Token
	}
	set(&next.StorageID, u.StorageID)
	set(&next.PortalRoot, u.PortalRoot)
	set(&next.SendRoot, u.SendRoot)
	pinned := ""
	if u.MetadataViewID != nil {
		pinned = strings.TrimSpace(*u.MetadataViewID)
	}
	if next.Name, err = checkName(next.Name); err != nil {
		return nil, err
	}
	if err := normalizeParams(&p); err != nil {
		return nil, err
	}
	next.StorageID = strings.TrimSpace(next.StorageID)
	if next.StorageID == "" {
		return nil, invalid("storage_id", "Choose the iconik storage files are delivered to (storage_id).")
	}
	if next.PortalRoot, err = checkRoot("portal_root", next.PortalRoot, DefaultPortalRoot); err != nil {
		return nil, err
	}
	if next.SendRoot, err = checkRoot("send_root", next.SendRoot, DefaultSendRoot); err != nil {
		return nil, err
	}
	if u.SlackWebhookURL != nil {
		hook, err := checkWebhook(*u.SlackWebhookURL)
		if err != nil {
			return nil, err
		}
		if next.SlackWebhookSealed, err = s.opt.Sealer.Seal(hook, slackContext(id)); err != nil {
			return nil, fmt.Errorf("connect: sealing the Slack webhook: %w", err)
		}
	}
	if err := s.nameFree(ctx, next.Name, id); err != nil {
		return nil, err
	}
	recheck := p.BaseURL != cur.BaseURL || p.AppID != cur.AppID || p.Token.Reveal() != tok.Reveal() ||
		next.StorageID != cur.StorageID || (pinned != "" && pinned != cur.MetadataViewID) || cur.State == db.ConnectionBroken
	next.BaseURL, next.AppID = p.BaseURL, p.AppID
	if recheck {
		ck, err := s.check(ctx, p, next.StorageID, pinned)
		if err != nil {
			return nil, err
		}
		now := s.now()
		next.StorageName, next.StorageMethod, next.StoragePath, next.MetadataViewID = ck.storage.Name, ck.storage.Method, ck.storage.Path, ck.viewID
		next.StorageAddsUUID = ck.storage.AddsUUID
		next.IconikUserID, next.IconikUserEmail = ck.rep.User.ID, ck.rep.User.Email
		next.State, next.StateReason, next.VerifiedAt = db.ConnectionOK, "", &now
		if p.Token.Reveal() != tok.Reveal() {
			if next.TokenSealed, err = s.opt.Sealer.Seal(p.Token, tokenContext(id)); err != nil {
				return nil, fmt.Errorf("connect: sealing the token: %w", err)
			}
		}
	}
	row, err := s.opt.Store.ConnectionUpdate(ctx, updateParams(&next, s.now()))
	switch {
	case errors.Is(err, db.ErrConflict):
		return nil, nameTaken(next.Name)
	case errors.Is(err, db.ErrNotFound):
		return nil, notFound()
	case err != nil:
		return nil, fmt.Errorf("connect: saving connection %s: %w", id, err)
	}
	s.log.Info("connection updated", "connection", id, "name", next.Name, "rechecked", recheck)
	return s.toConnection(row), nil
}

// updateParams saves every field of c.
func updateParams(c *db.Connection, now time.Time) *db.ConnectionUpdateParams {
	return &db.ConnectionUpdateParams{
		ID: c.ID, Name: c.Name, BaseURL: c.BaseURL, AppID: c.AppID, TokenSealed: c.TokenSealed,
		StorageID: c.StorageID, StorageName: c.StorageName, StorageMethod: c.StorageMethod, StoragePath: c.StoragePath,
		StorageAddsUUID: c.StorageAddsUUID, PortalRoot: c.PortalRoot, SendRoot: c.SendRoot, MetadataViewID: c.MetadataViewID, MetadataField: c.MetadataField,
		SlackWebhookSealed: c.SlackWebhookSealed, IconikUserID: c.IconikUserID, IconikUserEmail: c.IconikUserEmail,
		State: c.State, StateReason: c.StateReason, VerifiedAt: c.VerifiedAt, UpdatedAt: now,
	}
}

// Delete removes a connection no portal delivers to.
func (s *Service) Delete(ctx context.Context, id string) error {
	err := s.opt.Store.InTx(ctx, func(tx db.Tx) error {
		portals, err := tx.PortalList(ctx, &db.PortalListParams{})
		if err != nil {
			return err
		}
		var users []string
		for _, p := range portals {
			if slices.Contains(p.ConnectionIDs, id) {
				users = append(users, p.Name)
			}
		}
		if len(users) > 0 {
			return refuse(http.StatusConflict, "connection_in_use",
				"Portals deliver to this connection (%s): remove it from them first.", strings.Join(users, ", "))
		}
		return tx.ConnectionDelete(ctx, &db.ConnectionDeleteParams{ID: id})
	})
	switch {
	case AsError(err) != nil:
		return err
	case errors.Is(err, db.ErrNotFound):
		return notFound()
	case err != nil:
		return fmt.Errorf("connect: deleting connection %s: %w", id, err)
	}
	s.log.Info("connection deleted", "connection", id)
	return nil
}

// MarkBroken records that iconik refused the connection for good (the token
// was revoked, a role or the storage is gone): Client refuses it until a
// re-verification or an update passes. reason is for people and must not
// hold a secret.
func (s *Service) MarkBroken(ctx context.Context, id, reason string) (*Connection, error) {
	row, err := s.opt.Store.ConnectionSetState(ctx, &db.ConnectionSetStateParams{ID: id, State: db.ConnectionBroken,
		StateReason: reason, UpdatedAt: s.now()})
	if errors.Is(err, db.ErrNotFound) {
		return nil, notFound()
	}
	if err != nil {
		return nil, fmt.Errorf("connect: marking connection %s broken: %w", id, err)
	}
	s.log.Warn("connection marked broken", "connection", id, "name", row.Name, "reason", reason)
	return s.toConnection(row), nil
}

// BrokenReason says whether err, from a call made with a connection's
// client, means the connection is broken for good (iconik refused the token
// or a role): delivery calls MarkBroken with the reason instead of retrying.
func BrokenReason(err error) (string, bool) {
	switch iconik.StatusOf(err) {
	case http.StatusUnauthorized:
		return "iconik no longer accepts the token (401): create a new Application token and update the connection.", true
	case http.StatusForbidden:
		return fmt.Sprintf("iconik refused a call for lack of a role (403): %v. Grant the role and re-verify the connection.", err), true
	}
	return "", false
}

// Reverify runs every check again for a saved connection. A definitive
// failure (token refused, user or roles no longer enough, storage gone or
// no longer selectable, metadata view gone) marks it broken and returns it
// with the reason; a passing check marks it ok. An unreachable or failing
// iconik is returned as an error and changes nothing.
func (s *Service) Reverify(ctx context.Context, id string) (*Connection, *Report, error) {
	cur, err := s.row(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	tok, err := s.openToken(cur)
	if err != nil {
		return nil, nil, err
	}
	p := Params{BaseURL: cur.BaseURL, AppID: cur.AppID, Token: tok}
	v, rep, err := s.verify(ctx, p)
	if err != nil {
		if e := AsError(err); e != nil && e.Code == "iconik_bad_credentials" {
			c, merr := s.MarkBroken(ctx, id, e.Message)
			return c, nil, merr
		}
		return nil, nil, err
	}
	st, gerr := gate(rep, cur.StorageID)
	if gerr != nil {
		c, merr := s.MarkBroken(ctx, id, AsError(gerr).Message)
		return c, rep, merr
	}
	c, err := s.newClient(p, true)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.descriptionView(ctx, c, v.Roles, cur.MetadataViewID, cur.BaseURL); err != nil {
		if e := AsError(err); e != nil && e.Status < 500 {
			c, merr := s.MarkBroken(ctx, id, e.Message)
			return c, rep, merr
		}
		return nil, rep, err
	}
	now := s.now()
	if st.Path != cur.StoragePath || st.AddsUUID != cur.StorageAddsUUID {
		// The storage's prefix decides every object name admission checks
		// (and connections saved before it was recorded have none yet).
		next := *cur
		next.StoragePath, next.StorageAddsUUID = st.Path, st.AddsUUID
		if _, err := s.opt.Store.ConnectionUpdate(ctx, updateParams(&next, now)); err != nil && !errors.Is(err, db.ErrNotFound) {
			return nil, nil, fmt.Errorf("connect: recording the storage path of connection %s: %w", id, err)
		}
	}
	row, err := s.opt.Store.ConnectionSetState(ctx, &db.ConnectionSetStateParams{ID: id, State: db.ConnectionOK, VerifiedAt: &now, UpdatedAt: now})
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil, notFound()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect: marking connection %s verified: %w", id, err)
	}
	return s.toConnection(row), rep, nil
}

// Client returns an iconik client for connection id (the token opened, the
// App-ID's shared rate limiter) and the connection. A broken connection is
// refused with an error matching ErrBroken: retrying it would only repeat
// iconik's refusal.
func (s *Service) Client(ctx context.Context, id string) (*iconik.Client, *Connection, error) {
	r, err := s.row(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if r.State == db.ConnectionBroken {
		return nil, s.toConnection(r), refuse(http.StatusConflict, "connection_broken",
			"Connection %s is broken: %s Re-verify or update it.", r.Name, r.StateReason)
	}
	tok, err := s.openToken(r)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.newClient(Params{BaseURL: r.BaseURL, AppID: r.AppID, Token: tok}, false)
	if err != nil {
		return nil, nil, err
	}
	return c, s.toConnection(r), nil
}

// SlackWebhook returns the connection's Slack webhook URL (zero when none).
func (s *Service) SlackWebhook(ctx context.Context, id string) (secret.Value, error) {
	r, err := s.row(ctx, id)
	if err != nil {
		return secret.Value{}, err
	}
	v, err := s.opt.Sealer.Open(r.SlackWebhookSealed, slackContext(r.ID))
	if err != nil {
		return secret.Value{}, fmt.Errorf("connect: opening the Slack webhook of connection %s: %w", r.ID, err)
	}
	return v, nil
}
