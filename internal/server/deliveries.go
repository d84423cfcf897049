package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/delivery"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/ingest"
	"github.com/ferryhq/ferry/internal/notify"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/web"
)

// openDelivery builds the delivery service (River on the Store's own
// database) and hooks it into upload completion and finalize.
func (a *App) openDelivery(ctx context.Context, opt Options, g *gate) error {
	sealer, err := a.deliverySealer()
	if err != nil {
		return err
	}
	o := delivery.Options{
		DB: a.DB, Connections: deliveryConns{a.Connect}, Blobs: deliveryBlobs{a.Ingest}, Sealer: sealer,
		Logger:  a.log,
		Workers: a.cfg.DeliveryWorkers, PerDelivery: a.cfg.DeliveryPerPackage, IndexGrace: a.cfg.DeliveryIndexGrace, LeaseTTL: a.cfg.DeliveryLease,
	}
	if a.Notify != nil {
		o.OnSettled = a.Notify.OnSettled
	}
	if opt.Delivery != nil {
		opt.Delivery(&o)
	}
	o.OnSettled = a.countSettled(o.OnSettled)
	o.Blobs = countingBlobs{Blobs: o.Blobs, m: a.Metrics}
	d, err := delivery.New(ctx, o)
	if err != nil {
		return fmt.Errorf("starting deliveries: %w", err)
	}
	a.Delivery = d
	if g.onComplete == nil {
		g.onComplete = d.OnComplete
	}
	return nil
}

// deliverySealer seals the provider upload state delivery records (a GCS
// session URI is an upload credential). It uses the master key Open loaded
// (so the key file exists by now), read again here because Open keeps no
// Sealer on the App.
func (a *App) deliverySealer() (*secret.Sealer, error) {
	dataDir, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolving data directory %q: %w", a.cfg.DataDir, err)
	}
	key, err := secret.LoadKey(a.cfg.SecretKey, filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return nil, fmt.Errorf("loading the server key for deliveries: %w", err)
	}
	return secret.NewSealer(key)
}

// withDeliveries gives the web store the deliveries capability and the
// finalize hook.
func (a *App) withDeliveries(ws *webStore) web.Store {
	if a.Delivery == nil {
		return ws
	}
	if ws.onFinalize == nil {
		ws.onFinalize = a.finalizeHook()
	}
	return &deliveryStore{webStore: ws, d: a.Delivery, n: a.Notify, conns: a.Connect}
}

// startDelivery works delivery jobs until stopDelivery.
func (a *App) startDelivery(ctx context.Context) error {
	if a.Delivery == nil {
		return nil
	}
	// River's own context must outlive the HTTP shutdown: stopDelivery ends it.
	return a.Delivery.Start(context.WithoutCancel(ctx))
}

func (a *App) stopDelivery() {
	if a.Delivery == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout+5*time.Second)
	defer cancel()
	if err := a.Delivery.Stop(ctx, a.cfg.ShutdownTimeout); err != nil {
		a.log.Warn("stopping delivery jobs", "err", err)
	}
}

// deliveryConns adapts Cloud Connect to what delivery needs.
type deliveryConns struct{ c *connect.Service }

var _ delivery.BrokenMarker = deliveryConns{}

func (d deliveryConns) Client(ctx context.Context, id string) (*iconik.Client, delivery.Connection, error) {
	cl, c, err := d.c.Client(ctx, id)
	if errors.Is(err, connect.ErrBroken) {
		return nil, delivery.Connection{}, fmt.Errorf("%w: %w", delivery.ErrConnectionBroken, err)
	}
	if err != nil {
		return nil, delivery.Connection{}, err
	}
	return cl, delivery.Connection{ID: c.ID, StorageID: c.Storage.ID, StorageMethod: c.Storage.Method, StoragePath: c.Storage.Path,
		StorageAddsUUID: c.Storage.AddsUUID, PortalRoot: c.PortalRoot,
		SendRoot: c.SendRoot, MetadataViewID: c.MetadataViewID, DescriptionField: c.MetadataField}, nil
}

// MarkBroken records that iconik refused the connection for good, so that
// Client refuses it (and the API shows the reason) until it is re-verified
// or updated.
func (d deliveryConns) MarkBroken(ctx context.Context, id, reason string) error {
	_, err := d.c.MarkBroken(ctx, id, reason)
	return err
}

// deliveryBlobs adapts ingest's Blob to delivery's (same methods, distinct types).
type deliveryBlobs struct{ i *ingest.Ingest }

func (b deliveryBlobs) Open(ctx context.Context, id string) (delivery.Blob, error) {
	return b.i.Open(ctx, id)
}

// deliveryStore is the web store plus web.Deliveries.
type deliveryStore struct {
	*webStore
	d     *delivery.Service
	n     *notify.Service  // nil: no notifications
	conns *connect.Service // keyframe images (nil: none)
}

var _ web.Deliveries = (*deliveryStore)(nil)

func (s *deliveryStore) DeliveryGet(ctx context.Context, id string) (*web.Delivery, error) {
	st, err := s.d.Get(ctx, id)
	if err != nil {
		return nil, deliveryErr(err)
	}
	return webDelivery(st), nil
}

func (s *deliveryStore) DeliveryList(ctx context.Context, packageID string) ([]web.Delivery, error) {
	if _, err := s.db.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: packageID}); err != nil {
		return nil, deliveryErr(err)
	}
	list, err := s.d.List(ctx, packageID)
	if err != nil {
		return nil, deliveryErr(err)
	}
	out := make([]web.Delivery, 0, len(list))
	for _, st := range list {
		out = append(out, *webDelivery(st))
	}
	return out, nil
}

func (s *deliveryStore) DeliveryRetry(ctx context.Context, id string) (int, error) {
	n, err := s.d.Retry(ctx, id)
	return n, deliveryErr(err)
}

func (s *deliveryStore) DeliverySend(ctx context.Context, packageID, connectionID string) (*web.Delivery, error) {
	c, err := s.conns.Get(ctx, connectionID)
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return nil, &web.Error{Status: ce.Status, Code: ce.Code, Message: ce.Message}
		}
		return nil, deliveryErr(err)
	}
	if c.Broken() {
		// Every file would fail at once: say so now, with the reason.
		return nil, &web.Error{Status: http.StatusConflict, Code: "connection_broken",
			Message: fmt.Sprintf("Connection %s is broken: %s Re-verify or update it.", c.Name, c.StateReason)}
	}
	if err := s.checkSendToCloud(ctx, packageID, connectionID); err != nil {
		return nil, err
	}
	if u, ok := web.RequestUser(ctx); ok && s.n != nil {
		// Before the delivery exists: it may settle at once.
		if err := s.n.SetRequester(ctx, packageID, connectionID, u.Email); err != nil {
			return nil, deliveryErr(err)
		}
	}
	d, err := s.d.SendToCloud(ctx, packageID, connectionID)
	if err != nil {
		return nil, deliveryErr(err)
	}
	return s.DeliveryGet(ctx, d.ID)
}

// checkSendToCloud refuses a Send to Cloud before it is recorded when a
// file of the package could never be stored on the connection's storage
// (its full object name past the provider's limits): every file would
// otherwise fail at delivery.
func (s *deliveryStore) checkSendToCloud(ctx context.Context, packageID, connectionID string) error {
	pkg, err := s.db.PackageGetByID(ctx, &db.PackageGetByIDParams{ID: packageID})
	if err != nil {
		return deliveryErr(err)
	}
	c, err := s.db.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: connectionID})
	if err != nil {
		return deliveryErr(err)
	}
	err = delivery.CheckSendToCloud(ctx, s.db, pkg, c)
	if pe := portal.AsError(err); pe != nil {
		return &web.Error{Status: pe.Status, Code: pe.Code, Message: pe.Message}
	}
	return err
}

func (s *deliveryStore) JobsUI() http.Handler { return s.d.JobsUI() }

func deliveryErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, delivery.ErrNotFinalized):
		return fmt.Errorf("%w: %w", web.ErrConflict, err)
	}
	return err
}

func webDelivery(st *delivery.Status) *web.Delivery {
	d := st.Delivery
	state := stateText(string(d.State))
	if st.Retrying {
		state = "retrying"
	}
	out := &web.Delivery{ID: d.ID, PackageID: d.PackageID, ConnectionID: d.ConnectionID, Origin: d.Origin,
		State: state, Reason: st.Reason, CollectionID: d.CollectionID, IconikJobID: d.IconikJobID, Title: d.PackageTitle,
		Bytes: st.Bytes, BytesDone: st.BytesDone, Error: d.Error, CreatedAt: d.CreatedAt, SettledAt: d.SettledAt,
		Files: []web.DeliveryFile{}, Errors: []web.DeliveryError{}}
	for _, f := range st.Files {
		fstate := string(f.State)
		if f.Retrying() {
			fstate = "retrying"
		}
		out.Files = append(out.Files, web.DeliveryFile{FileID: f.FileID, Path: f.Path, Size: f.Size, State: fstate, Step: f.Step,
			BytesDone: f.BytesDone, Error: f.Error, LastError: f.LastError, Attempts: f.Attempts, NextAttemptAt: f.NextAttemptAt,
			CollectionID: f.CollectionID, AssetID: f.AssetID, FormatID: f.FormatID,
			FileSetID: f.FileSetID, IconikFileID: f.IconikFileID, JobID: f.JobID, KeyframeJobID: f.KeyframeJobID,
			KeyframesSkipped: f.KeyframesSkipped, SHA256: f.DeliveredSHA256})
		switch {
		case f.Error != "" && !f.Retrying():
			out.Errors = append(out.Errors, web.DeliveryError{Path: f.Path, Message: f.Error})
		case f.Retrying():
			// What it waits on now, not what an earlier attempt met.
			out.Errors = append(out.Errors, web.DeliveryError{Path: f.Path, Message: f.LastError})
		}
	}
	return out
}

// stateText spells states as the API documents them ("partially failed").
func stateText(s string) string {
	if s == string(db.DeliveryPartiallyFailed) {
		return "partially failed"
	}
	return s
}
