package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The console's packages: a searchable list, and a package page with its
// file tree, download links, Send to Cloud and every delivery with live
// per-file progress (server-sent events from /admin/packages/{id}/events).
// Each form goes through the same Store calls and rules as the JSON API.

// packagesPageSize is the console list's page size.
const packagesPageSize = 50

// packageListData is the list page's data.
type packageListData struct {
	Packages []packageRow
	Portals  []Portal
	Filter   PackageFilter
	States   []string
	Next     string // the next page's URL ("" on the last page)
	First    string // the first page's URL when not on it
}

type packageRow struct {
	Package
	PortalName string
}

func (s *Server) consolePackages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := PackageFilter{PortalID: q.Get("portal_id"), State: q.Get("state"), SenderEmail: strings.TrimSpace(q.Get("sender_email")),
		Query: strings.TrimSpace(q.Get("q")), Cursor: q.Get("cursor"), Limit: packagesPageSize}
	data := packageListData{Filter: f, States: []string{StateUploading, StateFinalized, StateExpired}}
	portals, err := s.opt.Store.PortalList(r.Context())
	if err != nil {
		return fmt.Errorf("listing portals: %w", err)
	}
	data.Portals = portals
	if !slices.Contains(data.States, f.State) && f.State != "" {
		return errorf(http.StatusBadRequest, "invalid_state", "The state must be uploading, finalized or expired.")
	}
	items, next, err := s.opt.Store.PackageList(r.Context(), f)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, p := range portals {
		names[p.ID] = p.Name
	}
	for _, p := range items {
		row := packageRow{Package: p}
		if p.PortalID != nil {
			row.PortalName = names[*p.PortalID]
		}
		data.Packages = append(data.Packages, row)
	}
	page := func(cursor string) string {
		v := url.Values{}
		for k, val := range map[string]string{"portal_id": f.PortalID, "state": f.State, "sender_email": f.SenderEmail, "q": f.Query, "cursor": cursor} {
			if val != "" {
				v.Set(k, val)
			}
		}
		if len(v) == 0 {
			return "/admin/packages"
		}
		return "/admin/packages?" + v.Encode()
	}
	if next != "" {
		data.Next = page(next)
	}
	if f.Cursor != "" {
		data.First = page("")
	}
	return s.consolePage(w, r, http.StatusOK, "packages/list", "Packages", "/admin/packages", data)
}

// packagePageData is the package page's data.
type packagePageData struct {
	Package       Package
	PortalName    string
	Tree          []treeRow
	Connections   []connectionChoice
	Deliveries    []deliveryView
	Notifications []Notification
	NotifyOn      bool   // notifications are enabled on this server
	DeliveriesOn  bool   // deliveries are enabled on this server
	NewLink       string // the absolute URL of a link just made (shown once)
	Link          linkForm
}

// linkForm is what the link form was filled with (kept on a refusal).
type linkForm struct {
	ExpiresIn    string
	MaxDownloads string
}

type connectionChoice struct {
	ID, Name, State, Reason string
	PortalRoot, SendRoot    string
}

// treeRow is one line of the file tree: a folder or a file, indented by depth.
type treeRow struct {
	Name   string
	Path   string
	Depth  int
	Indent string // CSS padding for the depth
	Dir    bool
	Size   int64
	SHA256 string
	State  string
}

// deliveryView is a delivery as the page and its live updates show it.
type deliveryView struct {
	ID             string             `json:"id"`
	Connection     string             `json:"connection"`
	Origin         string             `json:"origin"`
	State          string             `json:"state"`
	Reason         string             `json:"reason,omitempty"`
	Error          string             `json:"error,omitempty"`
	Bytes          int64              `json:"bytes"`
	BytesDone      int64              `json:"bytes_done"`
	Percent        int                `json:"percent"`
	CollectionID   string             `json:"collection_id,omitempty"`
	CollectionPath string             `json:"collection_path,omitempty"`
	CreatedAt      time.Time          `json:"created_at"`
	Failed         int                `json:"failed"`
	Files          []deliveryFileView `json:"files"`
}

type deliveryFileView struct {
	FileID        string     `json:"file_id"`
	Path          string     `json:"path"`
	Size          int64      `json:"size"`
	State         string     `json:"state"`
	Step          string     `json:"step,omitempty"`
	BytesDone     int64      `json:"bytes_done"`
	Percent       int        `json:"percent"`
	Speed         int64      `json:"speed"` // bytes per second since the last update (live only)
	Error         string     `json:"error,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	AssetID       string     `json:"asset_id,omitempty"`
	KeyframeJobID string     `json:"keyframe_job_id,omitempty"`
	NoKeyframes   bool       `json:"keyframes_skipped,omitempty"`
}

func percent(done, total int64) int {
	if total <= 0 {
		if done > 0 {
			return 100
		}
		return 0
	}
	return int(min(100, done*100/total))
}

// fileTree turns the package's paths into folder and file rows, folders
// first at each level, in path order.
func fileTree(files []File) []treeRow {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	var rows []treeRow
	seen := map[string]bool{}
	for _, f := range sorted {
		parts := strings.Split(f.Path, "/")
		for i := range len(parts) - 1 {
			dir := strings.Join(parts[:i+1], "/")
			if !seen[dir] {
				seen[dir] = true
				rows = append(rows, treeRow{Name: parts[i], Path: dir, Depth: i, Dir: true})
			}
		}
		rows = append(rows, treeRow{Name: parts[len(parts)-1], Path: f.Path, Depth: len(parts) - 1, Size: f.Size, SHA256: f.SHA256, State: f.State})
	}
	// Folder sizes: the sum of what is under them.
	for i := range rows {
		if rows[i].Dir {
			for _, f := range sorted {
				if strings.HasPrefix(f.Path, rows[i].Path+"/") {
					rows[i].Size += f.Size
				}
			}
		}
	}
	for i := range rows {
		rows[i].Indent = strconv.Itoa(rows[i].Depth*18+8) + "px"
	}
	return rows
}

// deliveryViews converts deliveries for the page; conns names connections,
// portalName is the package's portal (a portal delivery's collection sits
// under it: <root>/<portal>/<package>).
func deliveryViews(list []Delivery, conns map[string]connectionChoice, portalName string) []deliveryView {
	out := make([]deliveryView, 0, len(list))
	for _, d := range list {
		v := deliveryView{ID: d.ID, Connection: d.ConnectionID, Origin: d.Origin, State: d.State, Reason: d.Reason, Error: d.Error,
			Bytes: d.Bytes, BytesDone: d.BytesDone, Percent: percent(d.BytesDone, d.Bytes), CollectionID: d.CollectionID, CreatedAt: d.CreatedAt}
		root := ""
		if c, ok := conns[d.ConnectionID]; ok {
			v.Connection = c.Name
			root = c.SendRoot
			if d.Origin == "portal" {
				root = c.PortalRoot
				if portalName != "" {
					root += "/" + portalName
				}
			}
		}
		if d.Title != "" {
			v.CollectionPath = strings.TrimPrefix(root+"/"+d.Title, "/")
		}
		for _, f := range d.Files {
			if f.State == "failed" {
				v.Failed++
			}
			v.Files = append(v.Files, deliveryFileView{FileID: f.FileID, Path: f.Path, Size: f.Size, State: f.State, Step: f.Step,
				BytesDone: f.BytesDone, Percent: percent(f.BytesDone, f.Size), Error: f.Error, LastError: f.LastError,
				Attempts: f.Attempts, NextAttemptAt: f.NextAttemptAt, AssetID: f.AssetID, KeyframeJobID: f.KeyframeJobID, NoKeyframes: f.KeyframesSkipped})
		}
		out = append(out, v)
	}
	return out
}

// connectionChoices lists the connections (nil when Cloud Connect is off).
func (s *Server) connectionChoices(ctx context.Context) ([]connectionChoice, error) {
	if s.opt.Connections == nil {
		return nil, nil
	}
	list, err := s.opt.Connections.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing connections: %w", err)
	}
	out := make([]connectionChoice, 0, len(list))
	for _, c := range list {
		out = append(out, connectionChoice{ID: c.ID, Name: c.Name, State: c.State, Reason: c.StateReason, PortalRoot: c.PortalRoot, SendRoot: c.SendRoot})
	}
	return out, nil
}

func connectionIndex(list []connectionChoice) map[string]connectionChoice {
	m := make(map[string]connectionChoice, len(list))
	for _, c := range list {
		m[c.ID] = c
	}
	return m
}

// packagePage gathers everything the package page shows.
func (s *Server) packagePage(r *http.Request) (*packagePageData, error) {
	ctx := r.Context()
	pkg, err := s.opt.Store.PackageGet(ctx, r.PathValue("id"))
	if err != nil {
		return nil, notFoundAs(err, "package")
	}
	d := &packagePageData{Package: pkg, Tree: fileTree(pkg.Files), Link: linkForm{ExpiresIn: "168h"}}
	if pkg.PortalID != nil {
		if p, err := s.opt.Store.PortalGet(ctx, *pkg.PortalID); err == nil {
			d.PortalName = p.Name
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if d.Connections, err = s.connectionChoices(ctx); err != nil {
		return nil, err
	}
	if ds, ok := s.opt.Store.(Deliveries); ok {
		d.DeliveriesOn = true
		list, err := ds.DeliveryList(ctx, pkg.ID)
		if err != nil {
			return nil, deliveryError(err, "package")
		}
		d.Deliveries = deliveryViews(list, connectionIndex(d.Connections), d.PortalName)
	}
	if s.opt.Notifications != nil {
		d.NotifyOn = true
		if d.Notifications, err = s.opt.Notifications.NotificationList(ctx, pkg.ID); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (s *Server) consolePackage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.packagePage(r)
	if err != nil {
		return err
	}
	return s.consolePage(w, r, http.StatusOK, "packages/show", d.Package.Name, "/admin/packages", d)
}

// absoluteURL makes a path absolute on the address the browser used
// (behind a trusted proxy, the one it forwarded).
func absoluteURL(r *http.Request, p string) string {
	o := requestOrigin(r)
	return o.scheme + "://" + o.host + p
}

// consoleLinkCreate makes a download link from the page's form. The URL
// carries the link's secret, so it is shown on the answer itself (never put
// in a redirect's query string, where history and logs would keep it).
func (s *Server) consoleLinkCreate(w http.ResponseWriter, r *http.Request) error {
	form := linkForm{ExpiresIn: r.PostFormValue("expires_in"), MaxDownloads: strings.TrimSpace(r.PostFormValue("max_downloads"))}
	req := linkRequest{ExpiresIn: form.ExpiresIn, Password: r.PostFormValue("password")}
	if form.ExpiresIn == "never" {
		req.ExpiresIn = ""
	}
	var err error
	if form.MaxDownloads != "" {
		if req.MaxDownloads, err = strconv.Atoi(form.MaxDownloads); err != nil {
			err = errorf(http.StatusUnprocessableEntity, "invalid_max_downloads", "The download limit must be a whole number (0 or empty: unlimited), got %q.", form.MaxDownloads)
		}
	}
	var cl createdLink
	if err == nil {
		cl, err = s.createLink(r, r.PathValue("id"), req)
	}
	d, perr := s.packagePage(r)
	if perr != nil {
		return perr
	}
	d.Link = form
	if err != nil {
		return s.consoleForm(w, r, err, "packages/show", d.Package.Name, "/admin/packages", d)
	}
	d.NewLink = absoluteURL(r, cl.URL)
	p, err := s.newPage(r, d.Package.Name, "/admin/packages", d)
	if err != nil {
		return err
	}
	p.Flash = "Download link created. Copy it now: it is shown only once."
	renderNonce(w, http.StatusCreated, "packages/show", p, p.Nonce)
	return nil
}

// consoleSendToCloud is Send to Cloud from the package page.
func (s *Server) consoleSendToCloud(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	conn := r.PostFormValue("connection_id")
	if conn == "" {
		err = errorf(http.StatusUnprocessableEntity, "connection_id_required", "Choose a connection to send the package to.")
	} else {
		_, err = ds.DeliverySend(r.Context(), id, conn)
		err = deliveryError(err, "package or connection")
	}
	if err != nil {
		d, perr := s.packagePage(r)
		if perr != nil {
			return perr
		}
		return s.consoleForm(w, r, err, "packages/show", d.Package.Name, "/admin/packages", d)
	}
	return seeOther(w, r, "/admin/packages/"+url.PathEscape(id), "Sent to the cloud: the delivery is below.")
}

// consoleDeliveryRetry puts a delivery's failed files back in the queue.
func (s *Server) consoleDeliveryRetry(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	d, err := ds.DeliveryGet(r.Context(), r.PathValue("delivery"))
	if err != nil || d.PackageID != id {
		return errorf(http.StatusNotFound, "not_found", "This package has no such delivery.")
	}
	n, err := ds.DeliveryRetry(r.Context(), d.ID)
	if err != nil {
		return deliveryError(err, "delivery")
	}
	msg := fmt.Sprintf("%d failed files are being delivered again.", n)
	switch n {
	case 0:
		msg = "No file of that delivery had failed: nothing to retry."
	case 1:
		msg = "1 failed file is being delivered again."
	}
	return seeOther(w, r, "/admin/packages/"+url.PathEscape(id), msg)
}

// livePoll is how often the events stream looks at the Store.
const livePoll = 500 * time.Millisecond

// consolePackageEvents streams the package's deliveries as server-sent
// events: the Store is read every livePoll and an event goes out when
// anything shown changed (speeds are measured between two reads). The
// stream ends when the client goes.
func (s *Server) consolePackageEvents(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	pkg, err := s.opt.Store.PackageGet(ctx, id)
	if err != nil {
		return notFoundAs(err, "package")
	}
	portalName := ""
	if pkg.PortalID != nil {
		if p, err := s.opt.Store.PortalGet(ctx, *pkg.PortalID); err == nil {
			portalName = p.Name
		}
	}
	conns, err := s.connectionChoices(ctx)
	if err != nil {
		return err
	}
	index := connectionIndex(conns)
	rc := http.NewResponseController(w)
	// A server-wide write deadline must not cut a stream that lives as long as the page.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil
	}
	type sample struct {
		at    time.Time
		bytes int64
	}
	last := map[string]sample{} // delivery/file -> previous read
	var sent []byte
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	keepAlive := time.Now()
	for {
		list, err := ds.DeliveryList(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.ErrorContext(ctx, "web: reading deliveries for a live page", "package", id, "err", err)
		} else {
			now := time.Now()
			views := deliveryViews(list, index, portalName)
			for i := range views {
				for j := range views[i].Files {
					f := &views[i].Files[j]
					k := views[i].ID + "/" + f.FileID
					if p, ok := last[k]; ok && f.State == "running" && f.BytesDone > p.bytes {
						if dt := now.Sub(p.at).Seconds(); dt > 0 {
							f.Speed = int64(float64(f.BytesDone-p.bytes) / dt)
						}
					}
					last[k] = sample{now, f.BytesDone}
				}
			}
			b, err := json.Marshal(map[string]any{"deliveries": views})
			if err != nil {
				return err
			}
			if string(b) != string(sent) {
				if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
					return nil
				}
				if err := rc.Flush(); err != nil {
					return nil
				}
				sent, keepAlive = b, now
			} else if now.Sub(keepAlive) > 15*time.Second {
				// A comment line: proxies keep the connection, and a client
				// that went away is noticed by the failed write.
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
					return nil
				}
				if err := rc.Flush(); err != nil {
					return nil
				}
				keepAlive = now
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.draining:
			return nil
		case <-tick.C:
		}
	}
}

// Keyframes is an optional capability of the Store: a delivered file's
// keyframe image as iconik has it. The console proxies it, so the page's
// images stay same-origin (CSP img-src 'self') and iconik's signed URLs never
// reach the browser.
type Keyframes interface {
	// KeyframeImage opens the first keyframe of a delivered file
	// (ErrNotFound when iconik has none yet); the caller closes it.
	KeyframeImage(ctx context.Context, deliveryID, fileID string) (io.ReadCloser, string, error)
}

// maxKeyframe bounds what the proxy passes on: a keyframe is a small JPEG.
const maxKeyframe = 8 << 20

func (s *Server) consoleKeyframe(w http.ResponseWriter, r *http.Request) error {
	ks, ok := s.opt.Store.(Keyframes)
	ds, err := s.deliveries()
	if !ok || err != nil {
		return errorf(http.StatusNotFound, "not_found", "Keyframes are not available on this server.")
	}
	d, err := ds.DeliveryGet(r.Context(), r.PathValue("delivery"))
	if err != nil || d.PackageID != r.PathValue("id") {
		return errorf(http.StatusNotFound, "not_found", "This package has no such delivery.")
	}
	body, ctype, err := ks.KeyframeImage(r.Context(), d.ID, r.PathValue("file"))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return errorf(http.StatusNotFound, "not_found", "iconik has no keyframe for this file yet.")
		}
		return err
	}
	defer body.Close()
	if !strings.HasPrefix(ctype, "image/") {
		return errorf(http.StatusBadGateway, "not_an_image", "iconik answered something that is not an image.")
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.Copy(w, io.LimitReader(body, maxKeyframe))
	return nil
}
