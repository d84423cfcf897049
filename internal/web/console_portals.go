package web

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"
)

// Portal pages: the list, one form for create and edit, deactivate and
// delete. The form is a client of the same Store calls as the JSON API
// (PortalCreate, PortalUpdate, PortalDelete, PortalNotifySettingsSet).

type portalRow struct {
	Portal
	URL string
}

func (s *Server) consolePortals(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.opt.Store.PortalList(r.Context())
	if err != nil {
		return fmt.Errorf("listing portals: %w", err)
	}
	rows := make([]portalRow, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, portalRow{Portal: p, URL: s.absURL(r, "/p/"+p.Slug)})
	}
	return s.consolePage(w, r, http.StatusOK, "portals/list", "Portals", "/admin/portals", rows)
}

// portalForm is the form's state: what the admin typed, kept as typed, so
// a refusal shows the form again exactly as it was sent.
type portalForm struct {
	ID, Name, Slug            string
	Active, HasPassword       bool
	PasswordMode              string // keep | set | remove
	Recipients, Welcome       string
	MaxFileSize, MaxPackage   string
	MaxFileCount, Retention   string
	Allowed, Denied           string
	Connections               []connChoice
	HasConnections, HasNotify bool
	SenderReceipt             bool
	BaseURL, Link             string
}

type connChoice struct {
	ID, Name, State string
	Checked         bool
}

func (s *Server) portalFormFor(r *http.Request, p *Portal) (portalForm, error) {
	f := portalForm{Active: true, PasswordMode: "keep", SenderReceipt: true, BaseURL: s.absURL(r, "/p/")}
	var chosen []string
	if p != nil {
		f.ID, f.Name, f.Slug, f.Active, f.HasPassword = p.ID, p.Name, p.Slug, p.Active, p.HasPassword
		f.Recipients = strings.Join(p.Recipients, "\n")
		f.Welcome = p.WelcomeMessage
		f.MaxFileSize, f.MaxPackage = formatSize(p.Limits.MaxFileSize), formatSize(p.Limits.MaxPackageSize)
		if p.Limits.MaxFileCount > 0 {
			f.MaxFileCount = strconv.Itoa(p.Limits.MaxFileCount)
		}
		if p.RetentionDays > 0 {
			f.Retention = strconv.Itoa(p.RetentionDays)
		}
		f.Allowed, f.Denied = strings.Join(p.Limits.AllowedExtensions, ", "), strings.Join(p.Limits.DeniedExtensions, ", ")
		f.Link = s.absURL(r, "/p/"+p.Slug)
		chosen = p.ConnectionIDs
		if s.opt.Notifications != nil {
			n, err := s.opt.Notifications.PortalNotifySettings(r.Context(), p.ID)
			if err != nil {
				return f, fmt.Errorf("reading the notification switches of portal %s: %w", p.ID, err)
			}
			f.SenderReceipt = n.SenderReceipt
		}
	}
	f.HasNotify = s.opt.Notifications != nil
	if err := s.portalConnectionChoices(r, &f, chosen); err != nil {
		return f, err
	}
	return f, nil
}

// portalConnectionChoices fills the form's "Deliver to Cloud" checkboxes, ticking chosen.
func (s *Server) portalConnectionChoices(r *http.Request, f *portalForm, chosen []string) error {
	if s.opt.Connections == nil {
		return nil
	}
	f.HasConnections = true
	cs, err := s.opt.Connections.List(r.Context())
	if err != nil {
		return fmt.Errorf("listing connections: %w", err)
	}
	f.Connections = f.Connections[:0]
	for _, c := range cs {
		checked := false
		for _, id := range chosen {
			checked = checked || id == c.ID
		}
		f.Connections = append(f.Connections, connChoice{ID: c.ID, Name: c.Name, State: c.State, Checked: checked})
	}
	return nil
}

func (s *Server) consolePortalNew(w http.ResponseWriter, r *http.Request) error {
	f, err := s.portalFormFor(r, nil)
	if err != nil {
		return err
	}
	return s.consolePage(w, r, http.StatusOK, "portals/edit", "New portal", "/admin/portals", f)
}

func (s *Server) consolePortalEdit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.opt.Store.PortalGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundAs(err, "portal")
	}
	f, err := s.portalFormFor(r, &p)
	if err != nil {
		return err
	}
	return s.consolePage(w, r, http.StatusOK, "portals/edit", "Portal "+p.Name, "/admin/portals", f)
}

// readPortalForm turns the posted form into the Store's input; a value the
// form cannot parse (a size, a number) is refused like the Store's own
// refusals, by field.
func (s *Server) readPortalForm(r *http.Request, id string) (portalForm, PortalInput, error) {
	if err := r.ParseForm(); err != nil {
		return portalForm{}, PortalInput{}, errorf(http.StatusBadRequest, "bad_form", "The form could not be read.")
	}
	v := r.PostForm
	f := portalForm{
		ID: id, Name: strings.TrimSpace(v.Get("name")), Slug: strings.TrimSpace(v.Get("slug")),
		Active: v.Get("active") == "on", PasswordMode: v.Get("password_mode"),
		Recipients: v.Get("recipients"), Welcome: v.Get("welcome_message"),
		MaxFileSize: v.Get("max_file_size"), MaxPackage: v.Get("max_package_size"),
		MaxFileCount: v.Get("max_file_count"), Retention: v.Get("retention_days"),
		Allowed: v.Get("allowed_extensions"), Denied: v.Get("denied_extensions"),
		SenderReceipt: v.Get("sender_receipt") == "on", HasNotify: s.opt.Notifications != nil,
		BaseURL: s.absURL(r, "/p/"),
	}
	if f.PasswordMode == "" {
		f.PasswordMode = "keep"
	}
	in := PortalInput{
		Name: f.Name, Slug: f.Slug, Active: &f.Active, Recipients: splitList(f.Recipients),
		WelcomeMessage: f.Welcome, ConnectionIDs: v["connection_ids"],
		Limits: Limits{AllowedExtensions: splitList(f.Allowed), DeniedExtensions: splitList(f.Denied)},
	}
	if in.ConnectionIDs == nil {
		in.ConnectionIDs = []string{}
	}
	switch f.PasswordMode {
	case "set":
		pw := v.Get("password")
		if pw == "" {
			return f, in, &InvalidError{Field: "password", Message: "Type the new password, or choose to keep or remove it."}
		}
		in.Password = &pw
	case "remove":
		empty := ""
		in.Password = &empty
	case "keep":
	default:
		return f, in, &InvalidError{Field: "password", Message: "Choose keep, set or remove for the password."}
	}
	var err error
	if in.Limits.MaxFileSize, err = parseSize("Largest file", f.MaxFileSize); err != nil {
		return f, in, err
	}
	if in.Limits.MaxPackageSize, err = parseSize("Largest package", f.MaxPackage); err != nil {
		return f, in, err
	}
	if in.Limits.MaxFileCount, err = parseCount("Most files", f.MaxFileCount); err != nil {
		return f, in, err
	}
	if in.RetentionDays, err = parseCount("Keep packages for", f.Retention); err != nil {
		return f, in, err
	}
	return f, in, nil
}

func (s *Server) consolePortalSave(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	title := "New portal"
	var cur Portal
	if id != "" {
		var err error
		if cur, err = s.opt.Store.PortalGet(r.Context(), id); err != nil {
			return notFoundAs(err, "portal")
		}
		title = "Portal " + cur.Name
	}
	f, in, err := s.readPortalForm(r, id)
	if id != "" {
		f.HasPassword, f.Link = cur.HasPassword, s.absURL(r, "/p/"+cur.Slug)
	}
	refuse := func(err error) error {
		if cerr := s.portalConnectionChoices(r, &f, in.ConnectionIDs); cerr != nil {
			return cerr
		}
		return s.consoleForm(w, r, err, "portals/edit", title, "/admin/portals", f)
	}
	if err != nil {
		return refuse(err)
	}
	var p Portal
	if id == "" {
		p, err = s.opt.Store.PortalCreate(r.Context(), in)
	} else {
		p, err = s.opt.Store.PortalUpdate(r.Context(), id, in)
	}
	if err != nil {
		return refuse(err)
	}
	if s.opt.Notifications != nil {
		if _, err := s.opt.Notifications.PortalNotifySettingsSet(r.Context(), p.ID, PortalNotify{SenderReceipt: f.SenderReceipt}); err != nil {
			return fmt.Errorf("setting the sender receipt of portal %s: %w", p.ID, err)
		}
	}
	return seeOther(w, r, "/admin/portals/"+p.ID, "Portal saved.")
}

// consolePortalActive turns a portal on or off ("deactivate" on the list
// and the form), keeping everything else.
func (s *Server) consolePortalActive(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	p, err := s.opt.Store.PortalGet(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "portal")
	}
	active := r.PostFormValue("active") == "true"
	in := PortalInput{
		Name: p.Name, Slug: p.Slug, Active: &active, Recipients: p.Recipients, WelcomeMessage: p.WelcomeMessage,
		Limits: p.Limits, ConnectionIDs: p.ConnectionIDs, RetentionDays: p.RetentionDays,
	}
	if _, err := s.opt.Store.PortalUpdate(r.Context(), id, in); err != nil {
		return notFoundAs(err, "portal")
	}
	msg := "Portal " + p.Name + " deactivated: its page no longer accepts uploads."
	if active {
		msg = "Portal " + p.Name + " activated."
	}
	return seeOther(w, r, "/admin/portals", msg)
}

func (s *Server) consolePortalDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	p, err := s.opt.Store.PortalGet(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "portal")
	}
	if err := s.opt.Store.PortalDelete(r.Context(), id); err != nil {
		if errors.Is(err, ErrConflict) {
			// Shown on the portal's own page, where deactivating is one click away.
			f, ferr := s.portalFormFor(r, &p)
			if ferr != nil {
				return ferr
			}
			return s.consoleForm(w, r, err, "portals/edit", "Portal "+p.Name, "/admin/portals", f)
		}
		return notFoundAs(err, "portal")
	}
	return seeOther(w, r, "/admin/portals", "Portal "+p.Name+" deleted.")
}

// splitList reads a list typed one per line or separated by commas.
func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ';' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseCount(label, s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, &InvalidError{Field: "count", Message: fmt.Sprintf("%s: %q is not a whole number (leave it empty for no limit).", label, s)}
	}
	return n, nil
}

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

// parseSize reads a size as people write it: "20 GB" (decimal units, as
// disks are sold), "1.5 TiB" (binary units), "500000" (bytes). Empty: no
// limit.
func parseSize(label, s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := sizeUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 || math.IsInf(f, 0) {
		return 0, &InvalidError{Field: "size", Message: fmt.Sprintf("%s: %q is not a size like 20 GB or 1.5 TiB.", label, s)}
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, &InvalidError{Field: "size", Message: fmt.Sprintf("%s: %q is too large.", label, s)}
	}
	return int64(v), nil
}

// formatSize shows a size so that the form reads it back exactly: the
// shortest of "N unit" over the binary and decimal units with at most three
// decimals ("20 GB", "1.5 TiB", "512 MiB"), else bytes.
func formatSize(n int64) string {
	if n <= 0 {
		return ""
	}
	best := strconv.FormatInt(n, 10) + " B"
	for _, u := range []struct {
		name string
		v    int64
	}{{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15},
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50}} {
		if n < u.v {
			continue
		}
		r := new(big.Rat).SetFrac64(n, u.v)
		milli := new(big.Rat).Mul(r, big.NewRat(1000, 1))
		if !milli.IsInt() {
			continue
		}
		txt := strings.TrimRight(strings.TrimRight(r.FloatString(3), "0"), ".")
		if c := txt + " " + u.name; len(c) < len(best) {
			best = c
		}
	}
	return best
}
