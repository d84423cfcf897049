package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
)

// A file that waits for a retry says so: its last error and when it is
// tried next are recorded as soon as a retry is decided, at each of the
// three levels that retry (the iconik client within a call, a step in
// place, River between attempts), and cleared once work goes on. The
// delivery reads "retrying" while any of its files waits (Status).

// noteRetry records that the file met what and is tried again after wait.
// It writes only the retry columns (DeliveryFileSetRetry), so it is safe
// beside the worker's own saves, from any goroutine of the run.
func (r *fileRun) noteRetry(ctx context.Context, what string, wait time.Duration) {
	next := r.s.o.Now().Add(wait)
	if _, err := r.s.o.DB.DeliveryFileSetRetry(context.WithoutCancel(ctx), &db.DeliveryFileSetRetryParams{DeliveryID: r.f.DeliveryID,
		FileID: r.f.FileID, LastError: what, NextAttemptAt: &next}); err != nil {
		r.s.log.Warn("delivery: recording a retry", "delivery", r.f.DeliveryID, "path", r.f.Path, "err", err)
		return
	}
	r.waiting.Store(true)
}

// resumed records that the file no longer waits: a retried call or step
// went through.
func (r *fileRun) resumed(ctx context.Context) {
	if !r.waiting.Swap(false) {
		return
	}
	r.clearRetry(ctx, "")
}

// clearRetry drops the next attempt time, recording lastError when given.
func (r *fileRun) clearRetry(ctx context.Context, lastError string) {
	if _, err := r.s.o.DB.DeliveryFileSetRetry(context.WithoutCancel(ctx), &db.DeliveryFileSetRetryParams{DeliveryID: r.f.DeliveryID,
		FileID: r.f.FileID, LastError: lastError}); err != nil {
		r.s.log.Warn("delivery: recording that a file no longer waits", "delivery", r.f.DeliveryID, "path", r.f.Path, "err", err)
	}
}

// withRetryNotices makes the iconik client's own retries of this run's
// calls visible in the file's status.
func (r *fileRun) withRetryNotices(ctx context.Context) context.Context {
	return iconik.WithRetryNotice(ctx, func(n iconik.RetryNotice) { r.noteRetry(ctx, n.String(), n.Wait) })
}

// retrying returns whether the delivery waits for a retry of one of files,
// and the reason people read: the first waiting file's last error.
func retrying(d *db.Delivery, files []*db.DeliveryFile) (bool, string) {
	if d.State.Settled() {
		return false, ""
	}
	var first *db.DeliveryFile
	n := 0
	for _, f := range files {
		if f.Retrying() {
			if first == nil {
				first = f
			}
			n++
		}
	}
	if first == nil {
		return false, ""
	}
	reason := fmt.Sprintf("%s: %s (attempt %d; next attempt at %s)", first.Path, first.LastError, max(first.Attempts, 1),
		first.NextAttemptAt.UTC().Format(time.RFC3339))
	if n > 1 {
		reason += fmt.Sprintf("; %d more files wait for a retry", n-1)
	}
	return true, reason
}
