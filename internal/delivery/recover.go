package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
)

// Objects deleted in iconik while a file is delivered. ferry records every
// iconik id and trusts the record on resume; when a person deletes the asset,
// the file or a collection (or an emulator lost them), iconik answers 404 for
// the recorded id, and retrying the dead id can never succeed. So a 404 sends
// the file back to the step that creates what is gone, once per cause: if
// what ferry recreated is gone again, the file fails at once saying so.

// The causes, from the top of the tree down. Recreating one recreates what
// hangs below it.
const (
	goneCollection = "collection"
	goneAsset      = "asset"
	goneFormat     = "format"
	goneFileSet    = "file set"
	goneFile       = "file"
	goneJob        = "job"
	// The package-level job every file's job names as its parent.
	gonePackageJob = "package job"
)

// mayBeGone reports whether err may mean that an iconik object ferry named
// is gone: a 404, or a 400 that faults one of the ids in the body (iconik
// validates a body's ids as fields: {"collection_id": "Collection does not
// exist."}). It is only a suspicion: recoverGone asks iconik what is gone.
func mayBeGone(err error) bool {
	var ie *iconik.Error
	if !errors.As(err, &ie) {
		return false
	}
	switch ie.Status {
	case http.StatusNotFound:
		return true
	case http.StatusBadRequest:
		for k := range ie.FieldErrors {
			if strings.HasSuffix(k, "_id") {
				return true
			}
		}
	}
	return false
}

// dead reads the answer of a GET of a recorded object: gone when iconik
// does not know it (404) or holds it in its delete queue (status DELETED).
func dead(status string, err error) (bool, error) {
	if err != nil {
		if isNotFound(err) {
			return true, nil
		}
		return false, err
	}
	return status == "DELETED", nil
}

// recoverGone finds which recorded iconik objects of the file are gone after
// cause (an error mayBeGone accepted), forgets them so the steps create them
// again, and reports whether it did. false with a nil error: nothing
// recorded is gone, cause stands.
func (r *fileRun) recoverGone(ctx context.Context, cause error) (bool, error) {
	gone, err := r.findGone(ctx)
	if err != nil || len(gone) == 0 {
		return false, err
	}
	f := r.f
	done := strings.Split(f.Recreated, ",")
	for _, g := range gone {
		if slices.Contains(done, g.what) {
			return false, permanent("the %s of %s was deleted in iconik again after ferry recreated it once (%s %s: %v); not recreating it a second time",
				g.what, f.Path, g.what, g.id, cause)
		}
	}
	for _, g := range gone {
		r.s.log.Info("delivery: an iconik object recorded for a file is gone; creating it again", "delivery", f.DeliveryID, "path", f.Path,
			"object", g.what, "id", g.id, "err", cause)
		if f.Recreated != "" {
			f.Recreated += ","
		}
		f.Recreated += g.what
	}
	for _, g := range gone {
		if err := r.forgetGone(ctx, g.what); err != nil {
			return false, err
		}
	}
	f.Pending, f.PendingAt = "", nil
	return true, r.save(ctx)
}

// forgetGone forgets the recorded object what and everything that hangs
// below it, so that the steps create them again.
func (r *fileRun) forgetGone(ctx context.Context, what string) error {
	f := r.f
	switch what {
	case goneCollection:
		return r.forgetCollections(ctx)
	case goneAsset:
		if f.JobID != "" {
			// The job names the deleted asset: it ends here, and the new asset
			// gets a job of its own (best effort: the job may be gone too).
			if _, err := r.cl.JobPatch(ctx, f.JobID, iconik.JobPatchParams{Type: "TRANSFER", Status: "FAILED", Title: f.Path,
				ErrorMessage: "The asset was deleted in iconik during the delivery; ferry delivers the file again as a new asset."}); err != nil {
				r.s.log.Debug("delivery: closing the job of a deleted asset", "job", f.JobID, "err", err)
			}
		}
		f.AssetID, f.VersionID, f.FormatID, f.FileSetID, f.IconikFileID, f.JobID = "", "", "", "", "", ""
		r.userID = ""
		r.resetBytes()
	case goneFormat:
		f.FormatID, f.FileSetID, f.IconikFileID = "", "", ""
		r.resetBytes()
	case goneFileSet:
		f.FileSetID, f.IconikFileID = "", ""
		r.resetBytes()
	case goneFile:
		f.IconikFileID = ""
		r.resetBytes()
	case goneJob:
		f.JobID = ""
	case gonePackageJob:
		unlock := r.s.locks.lock("job|" + r.d.ID)
		defer unlock()
		d, err := r.s.o.DB.DeliverySetJob(ctx, &db.DeliverySetJobParams{ID: r.d.ID})
		if err != nil {
			return err
		}
		r.d = d
	}
	return nil
}

// resetBytes makes the upload start over: the file record the bytes went to
// (and its upload URLs and provider upload) is gone or about to be replaced.
// The new record names the same object key, which the upload overwrites.
func (r *fileRun) resetBytes() {
	f := r.f
	f.TransferState, f.BytesDone, f.MD5, f.DeliveredSHA256, f.KeyframeJobID, f.KeyframesSkipped = "", 0, "", "", "", false
	f.Step = stepUpload
	r.icFile = nil
}

type goneObject struct{ what, id string }

// findGone asks iconik which of the file's recorded objects are gone, top
// down; below a gone asset nothing else is asked (it goes with the asset).
func (r *fileRun) findGone(ctx context.Context) ([]goneObject, error) {
	f := r.f
	var out []goneObject
	d, err := r.s.o.DB.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: f.DeliveryID})
	if err != nil {
		return nil, err
	}
	r.d = d
	for _, id := range []string{d.CollectionID, f.CollectionID} {
		if id == "" {
			continue
		}
		c, err := r.cl.CollectionGet(ctx, id)
		var status string
		if c != nil {
			status = c.Status
		}
		if gone, err := dead(status, err); err != nil {
			return nil, fmt.Errorf("asking iconik whether collection %s still exists: %w", id, err)
		} else if gone {
			out = append(out, goneObject{goneCollection, id})
			break
		}
	}
	check := func(what, id string, get func() (string, error)) (bool, error) {
		if id == "" {
			return false, nil
		}
		gone, err := dead(get())
		if err != nil {
			return false, fmt.Errorf("asking iconik whether the %s %s of %s still exists: %w", what, id, f.Path, err)
		}
		if gone {
			out = append(out, goneObject{what, id})
		}
		return gone, nil
	}
	gone, err := check(goneAsset, f.AssetID, func() (string, error) {
		a, err := r.cl.AssetGet(ctx, f.AssetID)
		if err != nil {
			return "", err
		}
		return a.Status, nil
	})
	if err != nil {
		return nil, err
	}
	if !gone {
		for _, c := range []struct {
			what, id string
			get      func() (string, error)
		}{
			{goneFormat, f.FormatID, func() (string, error) {
				fm, err := r.cl.FormatGet(ctx, f.AssetID, "ORIGINAL")
				if err != nil {
					return "", err
				}
				if fm.ID != f.FormatID {
					return "DELETED", nil // replaced: the recorded one is gone
				}
				return fm.Status, nil
			}},
			{goneFileSet, f.FileSetID, func() (string, error) {
				for fs, err := range r.cl.FileSetList(ctx, f.AssetID) {
					if err != nil {
						return "", err
					}
					if fs.ID == f.FileSetID {
						return fs.Status, nil
					}
				}
				return "DELETED", nil
			}},
			{goneFile, f.IconikFileID, func() (string, error) {
				x, err := r.cl.FileGet(ctx, f.AssetID, f.IconikFileID, iconik.FileGetParams{})
				if err != nil {
					return "", err
				}
				return x.Status, nil
			}},
		} {
			gone, err := check(c.what, c.id, c.get)
			if err != nil {
				return nil, err
			}
			if gone {
				break // what hangs below goes with it
			}
		}
	}
	for _, j := range []struct{ what, id string }{{goneJob, f.JobID}, {gonePackageJob, d.IconikJobID}} {
		if _, err := check(j.what, j.id, func() (string, error) {
			_, err := r.cl.JobGet(ctx, j.id)
			return "", err // a job has no DELETED status: it is there or not
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// forgetCollections makes the file's collection path resolve again: the
// first level of the delivery's path iconik no longer has is dropped from
// the claims and the cache (the levels below hang under its id and are
// looked up afresh under the new one), the delivery forgets its package
// collection when that is gone, and the file its folder. An asset of the
// file that survived is added to the new folder by the collection step.
func (r *fileRun) forgetCollections(ctx context.Context) error {
	unlock := r.s.locks.lock("collection|" + r.d.ID)
	defer unlock()
	d, err := r.s.o.DB.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: r.d.ID})
	if err != nil {
		return err
	}
	if _, err := r.s.plan.forgetDeadLevel(ctx, r.cl, r.conn.ID, d, r.folders()); err != nil {
		return err
	}
	if d.CollectionID != "" {
		c, err := r.cl.CollectionGet(ctx, d.CollectionID)
		var status string
		if c != nil {
			status = c.Status
		}
		gone, err := dead(status, err)
		if err != nil {
			return err
		}
		if gone {
			if d, err = r.s.o.DB.DeliverySetCollection(ctx, &db.DeliverySetCollectionParams{ID: d.ID, RootTitle: d.RootTitle}); err != nil {
				return err
			}
		}
	}
	r.d = d
	r.f.CollectionID = ""
	return nil
}

// forgetDeadLevel walks the delivery's collection path top-down through the
// claims and forgets the first recorded collection iconik no longer has.
// It reports the forgotten id ("" when every recorded level lives).
func (p *planner) forgetDeadLevel(ctx context.Context, cl *iconik.Client, connID string, d *db.Delivery, folders []string) (string, error) {
	if d.RootTitle == "" || d.PackageTitle == "" {
		return "", nil // never resolved: nothing recorded
	}
	type level struct{ title, packageID string }
	levels := []level{{d.RootTitle, ""}}
	if d.Origin == db.DeliveryOriginPortal {
		levels = append(levels, level{titleSafe(d.PortalName), ""})
	}
	levels = append(levels, level{d.PackageTitle, d.PackageID})
	for _, f := range folders {
		levels = append(levels, level{f, ""})
	}
	q := p.s.o.DB
	parent := ""
	for _, l := range levels {
		c, err := q.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: connID, ParentID: parent, Title: l.title,
			PackageID: l.packageID, CreatedAt: p.s.o.Now()})
		if err != nil {
			return "", err
		}
		if c.CollectionID == "" {
			return "", nil // not resolved (or already forgotten): the lookup happens anyway
		}
		col, err := cl.CollectionGet(ctx, c.CollectionID)
		var status string
		if col != nil {
			status = col.Status
		}
		gone, err := dead(status, err)
		if err != nil {
			return "", fmt.Errorf("asking iconik whether collection %q still exists: %w", l.title, err)
		}
		if gone {
			return c.CollectionID, p.forget(ctx, connID, c.CollectionID)
		}
		parent = c.CollectionID
	}
	return "", nil
}

// forget drops collection id from the claims and this process's caches.
func (p *planner) forget(ctx context.Context, connID, id string) error {
	if err := p.s.o.DB.DeliveryCollectionForget(ctx, &db.DeliveryCollectionForgetParams{ConnectionID: connID, CollectionID: id}); err != nil {
		return err
	}
	p.cache.Range(func(k, v any) bool {
		if v == id {
			p.cache.Delete(k)
		}
		return true
	})
	p.freshMu.Lock()
	delete(p.fresh, id)
	p.freshMu.Unlock()
	return nil
}
