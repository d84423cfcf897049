package delivery_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/iconik/ispec/ispectest"
	"github.com/ferryhq/ferry/internal/portal"
)

// env is ferry's side (SQLite store, portal rules, stored bytes on disk,
// delivery with River) against an iconik emulator.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  db.Store
	portal *portal.Service
	emu    *emulator.Server
	url    string         // the emulator's base URL
	cl     *iconik.Client // the test's own view of iconik
	conns  *staticConns
	svc    *delivery.Service
	opts   delivery.Options // svc's, for restart
	blobs  string
	upload atomic.Int64
	mu     sync.Mutex
	events map[string]int // delivery id -> settled events seen
}

// staticConns holds the test's connections and, like internal/connect,
// refuses one marked broken.
type staticConns struct {
	mu      sync.Mutex
	clients map[string]*iconik.Client
	conns   map[string]delivery.Connection
	broken  map[string]string // id -> reason
}

func (c *staticConns) Client(_ context.Context, id string) (*iconik.Client, delivery.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.clients[id]
	if !ok {
		return nil, delivery.Connection{}, fmt.Errorf("no connection %q", id)
	}
	if reason, ok := c.broken[id]; ok {
		return nil, delivery.Connection{}, fmt.Errorf("connection %s: %s: %w", id, reason, delivery.ErrConnectionBroken)
	}
	return cl, c.conns[id], nil
}

func (c *staticConns) MarkBroken(_ context.Context, id, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken[id] = reason
	return nil
}

// setClient replaces connection id's client (a token replaced in iconik).
func (c *staticConns) setClient(id string, cl *iconik.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clients[id] = cl
}

// brokenReason is why connection id was marked broken ("" while it was not).
func (c *staticConns) brokenReason(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken[id]
}

type fileBlob struct {
	*os.File
	size int64
}

func (b fileBlob) Size() int64 { return b.size }

type envOptions struct {
	faults   emulator.Faults
	wrap     func(http.Handler) http.Handler // in front of the emulator (extra faults)
	dsn      string                          // database; "" = SQLite in a temp dir
	dataDir  string
	noSpec   bool // faults answer statuses the spec does not declare
	seed     *emulator.Seed
	services func(*delivery.Options)
	// replicas > 1 starts that many Services, each on its own Store (its
	// own connections, as separate processes have) on the one database:
	// e.svc enqueues, all of them work jobs.
	replicas int
	// noStart leaves e.svc stopped (it still enqueues); the test starts it.
	noStart bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	dsn := o.dsn
	if dsn == "" {
		dsn = filepath.Join(dir, "ferry.db")
	}
	store, err := db.Open(ctx, dsn, db.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, ctx: ctx, store: store, portal: portal.New(store, portal.Options{}), blobs: filepath.Join(dir, "blobs"),
		events: map[string]int{}}
	if err := os.MkdirAll(e.blobs, 0o700); err != nil {
		t.Fatal(err)
	}
	e.emu, e.url = startEmulator(t, emulator.Options{Faults: o.faults, DataDir: o.dataDir, Seed: o.seed, Logger: slog.New(slog.DiscardHandler)}, o.wrap)
	e.cl = e.client(t, o.noSpec)
	e.conns = &staticConns{clients: map[string]*iconik.Client{}, conns: map[string]delivery.Connection{}, broken: map[string]string{}}
	opts := delivery.Options{
		DB: store, Connections: e.conns,
		Blobs: delivery.BlobsFunc(func(_ context.Context, id string) (delivery.Blob, error) {
			f, err := os.Open(filepath.Join(e.blobs, id))
			if err != nil {
				return nil, err
			}
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, err
			}
			return fileBlob{f, st.Size()}, nil
		}),
		RetryBackoff: func(int) time.Duration { return 100 * time.Millisecond },
		IndexGrace:   2 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
		OnSettled: func(_ context.Context, ev delivery.Event) error {
			e.mu.Lock()
			e.events[ev.Delivery.ID]++
			e.mu.Unlock()
			return nil
		},
	}
	if o.services != nil {
		o.services(&opts)
	}
	e.opts = opts
	e.svc, err = delivery.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noStart {
		if err := e.svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { e.svc.Stop(context.Background(), 5*time.Second) })
	for range max(o.replicas-1, 0) {
		other, err := db.Open(ctx, dsn, db.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		ro := opts
		ro.DB = other
		svc, err := delivery.New(ctx, ro)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Stop(context.Background(), 5*time.Second) })
	}
	return e
}

// restart stops the delivery service at once (running files are cancelled
// wherever they are, as by a crash of the process) and starts a new one on
// the same database.
func (e *env) restart() {
	e.t.Helper()
	if err := e.svc.Stop(context.Background(), 0); err != nil {
		e.t.Logf("stopping the delivery service: %v", err)
	}
	svc, err := delivery.New(e.ctx, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := svc.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	e.t.Cleanup(func() { svc.Stop(context.Background(), 5*time.Second) })
}

// client is an admin client of the emulator whose traffic is checked
// against iconik's spec.
func (e *env) client(t *testing.T, noSpec bool) *iconik.Client {
	cred := e.cred("admin")
	tr := ispectest.Transport(t, nil)
	if noSpec {
		tr = ispectest.TransportAllowing(t, nil, 429, 500, 502, 503)
	}
	cl, err := iconik.New(iconik.Options{BaseURL: e.url, AppID: cred.AppID, Token: cred.Token, Transport: tr,
		Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAttempts: 8, RateLimit: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// startEmulator runs an emulator for the test, behind wrap when given.
func startEmulator(t *testing.T, opts emulator.Options, wrap func(http.Handler) http.Handler) (*emulator.Server, string) {
	t.Helper()
	if wrap == nil {
		e := emulatortest.Start(t, opts)
		return e.Server, e.URL
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	s, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wrap(s.Handler()))
	s.SetBaseURL(srv.URL)
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return s, srv.URL
}

func (e *env) cred(name string) emulator.Credential {
	for _, c := range e.emu.Credentials() {
		if c.Name == name {
			return c
		}
	}
	e.t.Fatalf("emulator has no credential %q", name)
	return emulator.Credential{}
}

// connect registers connection id on the emulator's storage named storage,
// with a description view.
func (e *env) connect(id, storage string) delivery.Connection {
	e.t.Helper()
	var st *iconik.Storage
	for s, err := range e.cl.StorageList(e.ctx, iconik.StorageListParams{Purpose: "FILES"}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if s.Name == storage {
			st = &s
		}
	}
	if st == nil {
		e.t.Fatalf("emulator has no storage %q", storage)
	}
	view := e.descriptionView()
	c := delivery.Connection{ID: id, StorageID: st.ID, StorageMethod: st.Method, StoragePath: st.Setting("path"),
		StorageAddsUUID: st.Flag("add_uuid_to_filenames"), MetadataViewID: view}
	e.conns.mu.Lock()
	defer e.conns.mu.Unlock()
	e.conns.clients[id] = e.client(e.t, true)
	e.conns.conns[id] = c
	return c
}

func (e *env) descriptionView() string {
	if _, err := e.cl.MetadataFieldGet(e.ctx, "description"); err != nil {
		if _, err := e.cl.MetadataFieldCreate(e.ctx, iconik.MetadataFieldCreateParams{Name: "description", Label: "Description", FieldType: "text"}); err != nil {
			e.t.Fatal(err)
		}
	}
	views, err := e.cl.MetadataViewList(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range views {
		if v.Name == "ferry" {
			return v.ID
		}
	}
	v, err := e.cl.MetadataViewCreate(e.ctx, iconik.MetadataViewCreateParams{Name: "ferry", ViewFields: []iconik.MetadataViewField{{Name: "description", Label: "Description"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return v.ID
}

func (e *env) createPortal(name string, connIDs ...string) *db.Portal {
	e.t.Helper()
	p, err := e.portal.CreatePortal(e.ctx, portal.PortalInput{Name: name, Slug: strings.ToLower(strings.ReplaceAll(name, " ", "-")), Active: true, ConnectionIDs: connIDs})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

type pkgHandle struct {
	pkg     *db.Package
	token   string
	files   map[string][]byte
	ids     map[string]string // path -> ferry file id
	uploads map[string]string // path -> upload id (the stored bytes)
}

func (e *env) newPackage(slug, name, sender string) *pkgHandle {
	e.t.Helper()
	var uid string
	if slug == "" {
		u, err := e.portal.CreateUser(e.ctx, fmt.Sprintf("op%d@ferry.test", e.upload.Add(1)), "correct horse battery staple", true)
		if err != nil {
			e.t.Fatal(err)
		}
		uid = u.ID
	}
	pkg, tok, err := e.portal.CreatePackage(e.ctx, portal.NewPackage{PortalSlug: slug, UserID: uid, Name: name, SenderEmail: sender})
	if err != nil {
		e.t.Fatal(err)
	}
	return &pkgHandle{pkg: pkg, token: tok, files: map[string][]byte{}, ids: map[string]string{}, uploads: map[string]string{}}
}

// put uploads one file the way ingest records it: admitted, bytes stored,
// completion recorded with the computed SHA-256 (and the delivery hook).
func (e *env) put(h *pkgHandle, path string, data []byte) {
	e.t.Helper()
	e.putStored(h, path, data, data)
}

// putStored records data as the file's content (size, SHA-256) while the
// store holds stored: damage the package store suffered after ingest.
func (e *env) putStored(h *pkgHandle, path string, data, stored []byte) {
	e.t.Helper()
	up := fmt.Sprintf("up-%d", e.upload.Add(1))
	sum := sha256.Sum256(data)
	adm, err := e.portal.Admit(e.ctx, portal.Upload{Token: h.token, RelativePath: path, Filename: filepath.Base(path), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), UploadID: up})
	if err != nil {
		e.t.Fatalf("admitting %s: %v", path, err)
	}
	h.uploads[path] = up
	if err := os.WriteFile(filepath.Join(e.blobs, up), stored, 0o600); err != nil {
		e.t.Fatal(err)
	}
	f, err := e.portal.CompleteFile(e.ctx, portal.Completion{FileRef: portal.FileRef{FileID: adm.File.ID, UploadID: up}, Size: int64(len(data)), SHA256: sum[:]}, e.svc.OnComplete)
	if err != nil {
		e.t.Fatalf("completing %s: %v", path, err)
	}
	h.files[path] = data
	h.ids[path] = f.ID
}

func (e *env) finalize(h *pkgHandle) {
	e.t.Helper()
	if _, err := e.portal.Finalize(e.ctx, h.pkg.ID, e.svc.OnFinalize); err != nil {
		e.t.Fatal(err)
	}
}

// deliveryOf returns the delivery of h to connection conn.
func (e *env) deliveryOf(h *pkgHandle, conn string) *db.Delivery {
	e.t.Helper()
	d, err := e.store.DeliveryGetByPackageConnection(e.ctx, &db.DeliveryGetByPackageConnectionParams{PackageID: h.pkg.ID, ConnectionID: conn})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// settled waits (bounded, not a timing assertion) for the delivery of h to
// connection conn to settle and emit its event.
func (e *env) settled(h *pkgHandle, conn string) *delivery.Status {
	e.t.Helper()
	return e.settledN(h, conn, 1)
}

// settledN waits for the delivery's n-th settling (after n-1 retries).
func (e *env) settledN(h *pkgHandle, conn string, n int) *delivery.Status {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := e.store.DeliveryGetByPackageConnection(e.ctx, &db.DeliveryGetByPackageConnectionParams{PackageID: h.pkg.ID, ConnectionID: conn})
		e.mu.Lock()
		evs := 0
		if err == nil {
			evs = e.events[d.ID]
		}
		e.mu.Unlock()
		if err == nil && d.SettledAt != nil && evs >= n {
			st, err := e.svc.Get(e.ctx, d.ID)
			if err != nil {
				e.t.Fatal(err)
			}
			return st
		}
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			e.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			if d != nil {
				files, _ := e.store.DeliveryFileList(e.ctx, &db.DeliveryFileListParams{DeliveryID: d.ID})
				for _, f := range files {
					e.t.Logf("%s: %s step %q pending %q: %s", f.Path, f.State, f.Step, f.Pending, f.Error)
				}
				e.t.Logf("delivery %+v, events %d", d, evs)
				rows, err := e.store.SQLDB().QueryContext(e.ctx, "SELECT id, kind, state, args, attempt, errors FROM river_job ORDER BY id")
				if err == nil {
					for rows.Next() {
						var id, attempt int
						var kind, state, args string
						var errs sql.NullString
						rows.Scan(&id, &kind, &state, &args, &attempt, &errs)
						e.t.Logf("river job %d %s %s %s attempt %d errors %s", id, kind, state, args, attempt, errs.String)
					}
					rows.Close()
				}
			}
			e.t.Fatalf("delivery of %s to %s did not settle", h.pkg.Name, conn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tree lists iconik's collections and assets under parent as sorted paths
// ("a/", "a/b.txt").
func (e *env) tree(parent, prefix string) []string {
	e.t.Helper()
	var out []string
	for it, err := range e.cl.CollectionContentsList(e.ctx, parent, iconik.CollectionContentsListParams{}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if it.ObjectType == "collections" {
			out = append(out, prefix+it.Title+"/")
			out = append(out, e.tree(it.ID, prefix+it.Title+"/")...)
		} else {
			out = append(out, prefix+it.Title)
		}
	}
	sort.Strings(out)
	return out
}

func (e *env) rootCollection(title string) []iconik.Collection {
	var out []iconik.Collection
	for c, err := range e.cl.CollectionList(e.ctx, iconik.CollectionListParams{IsRoot: new(true)}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if c.Title == title {
			out = append(out, c)
		}
	}
	return out
}

func (e *env) child(parent, title string) string {
	e.t.Helper()
	var ids []string
	for it, err := range e.cl.CollectionContentsList(e.ctx, parent, iconik.CollectionContentsListParams{ObjectTypes: []string{"collections"}}) {
		if err != nil {
			e.t.Fatal(err)
		}
		if it.Title == title {
			ids = append(ids, it.ID)
		}
	}
	if len(ids) != 1 {
		e.t.Fatalf("collection %q under %s: %d found, want exactly 1", title, parent, len(ids))
	}
	return ids[0]
}

func (e *env) object(storageID, key string) []byte {
	e.t.Helper()
	rc, _, err := e.emu.OpenObject(storageID, key)
	if err != nil {
		e.t.Fatalf("reading %s from the storage: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func pngBytes() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for x := range 32 {
		for y := range 24 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 10), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}
