package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
)

// Reconcile completes every finished whole upload (single or final) whose completion was never
// acknowledged: the process died, or Gate.Complete failed, between the last byte and the marker
// ingest writes after Complete returns. Run it at start-up; it is safe to run again at any time
// (the sweeper does, so a completion that failed for a passing reason is retried).
//
// One upload never stops it: an upload the Gate refuses for good is abandoned (the Gate logs
// it with its package and path; Cleanup removes its bytes), and one that fails for another
// reason is logged and left for the next run. It returns an error only when it cannot look at
// the uploads at all, or ctx ends.
func (i *Ingest) Reconcile(ctx context.Context) error {
	ids, err := i.store.IDs()
	if err != nil {
		return fmt.Errorf("ingest: reconciling: %w", err)
	}
	done, left := 0, 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ingest: reconciling: %w", err)
		}
		info, err := i.store.Info(id)
		if err != nil {
			if !errors.Is(err, handler.ErrNotFound) { // else removed meanwhile
				i.log.ErrorContext(ctx, "reconciling: reading upload failed; left for the next run", "upload", id, "error", err)
				left++
			}
			continue
		}
		if info.IsPartial || !concatstore.Finished(info) || i.store.Acknowledged(id) {
			continue
		}
		if _, abandoned := i.store.Abandoned(id); abandoned {
			continue
		}
		if err := i.reconcileOne(ctx, id); err != nil {
			i.log.ErrorContext(ctx, "reconciling: completing upload failed; left for the next run", "upload", id, "error", err)
			left++
			continue
		}
		done++
	}
	if done > 0 || left > 0 {
		i.log.InfoContext(ctx, "reconciled finished uploads", "count", done, "left", left)
	}
	return ctx.Err()
}

func (i *Ingest) reconcileOne(ctx context.Context, id string) error {
	unlock, err := i.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	info, err := i.store.Info(id) // again, under the lock
	if err != nil || i.store.Acknowledged(id) {
		return nil
	}
	err = i.finish(ctx, info, nil)
	var he handler.Error
	if errors.As(err, &he) && he.HTTPResponse.StatusCode < 500 {
		// Settled without a completion: failed its integrity check (reported, removed) or
		// refused for good by the Gate (abandoned).
		return nil
	}
	return err
}

// Cleanup removes uploads idle for longer than olderThan that can no longer become a file:
// unfinished uploads, finished ones whose announced SHA-256 never arrived, abandoned ones, and
// partial uploads that no existing final upload references. Finished whole uploads stay until Delete. It returns how many uploads it removed.
func (i *Ingest) Cleanup(ctx context.Context, olderThan time.Duration) (int, error) {
	ids, err := i.store.IDs()
	if err != nil {
		return 0, fmt.Errorf("ingest: cleaning up: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("ingest: cleaning up: %w", err)
		}
		ok, err := i.cleanupOne(ctx, id, cutoff)
		if err != nil {
			errs = append(errs, fmt.Errorf("ingest: cleaning up upload %s: %w", id, err))
		}
		if ok {
			removed++
		}
	}
	if removed > 0 {
		i.log.InfoContext(ctx, "removed stale uploads", "count", removed)
	}
	return removed, errors.Join(errs...)
}

func (i *Ingest) cleanupOne(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	last, err := i.store.LastActivity(id)
	if err != nil || last.After(cutoff) {
		return false, nil
	}
	info, err := i.store.Info(id)
	if err != nil {
		return false, nil // removed meanwhile (a final takes its partials with it)
	}
	_, abandoned := i.store.Abandoned(id)
	switch {
	case info.IsPartial:
		if fid, err := i.store.FinalOf(id); err != nil || fid != "" {
			return false, nil // part of a live final upload (or unreadable: leave it)
		}
	case abandoned:
	case concatstore.Finished(info) && !i.awaitsDigest(info):
		return false, nil
	}
	unlock, err := i.lock(ctx, id)
	if err != nil {
		return false, err
	}
	defer unlock()
	if err := i.store.Remove(id); err != nil {
		return false, err
	}
	if info.IsPartial {
		if err := i.gate.Removed(ctx, uploadOf(info, nil)); err != nil {
			i.log.ErrorContext(ctx, "telling the gate of a removed partial upload", "upload", id, "err", err)
		}
	}
	return true, nil
}
