// Package store is the contract between ingest and the places package bytes live: the tusd
// DataStore (with its terminate, concatenate and deferred-length extensions) plus the
// bookkeeping ferry keeps per upload. concatstore (local disk) and s3store (S3-compatible object
// storage) implement it; storetest is the suite both pass. It holds no implementation.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// Store is an upload store. Every method works from what the backing holds, so another process
// on the same backing (a replica) can serve any request for any upload; only tusd's per-upload
// lock must be shared across them.
type Store interface {
	// UseIn plugs the store and its tusd extensions (terminate, concatenate, deferred length)
	// into a composer.
	UseIn(c *handler.StoreComposer)

	// Abandon records durably that the upload can never become a file; its bytes stay until
	// Remove. Abandoning a missing upload is not an error.
	Abandon(id string, why Abandonment) error
	// Abandoned returns why the upload was abandoned, if it was.
	Abandoned(id string) (Abandonment, bool)
	// Acknowledge records durably that the application took note of the upload's completion.
	Acknowledge(id string) error
	// Acknowledged reports whether Acknowledge ran for id.
	Acknowledged(id string) bool
	// CheckWritable writes and removes a small probe: a store that went read-only, full or
	// unreachable fails here before a sender finds out. Its error may name paths or hosts: log
	// it, never hand it out.
	CheckWritable(ctx context.Context) error
	// Claim promises upload id room for size more bytes, or refuses with an error that is
	// errors.Is ErrNoRoom. Release drops a promise never used.
	Claim(id string, size int64) error
	// FinalOf returns the existing final upload that references partial upload id, or "".
	FinalOf(id string) (string, error)
	// IDs lists every upload in the store.
	IDs() ([]string, error)
	// Info returns an upload's current FileInfo; handler.ErrNotFound when there is none.
	Info(id string) (handler.FileInfo, error)
	// LastActivity is when the upload last changed.
	LastActivity(id string) (time.Time, error)
	// Open reads a finished upload; a final upload reads its partials in order (no copy was
	// made). ErrNotFinished for an upload still receiving bytes.
	Open(id string) (Blob, error)
	// Release drops the promise Claim made for id.
	Release(id string)
	// Remove deletes an upload; a final upload takes its partials with it. A partial that a
	// final references is refused with ErrPartialProtected. Removing a missing upload is not
	// an error.
	Remove(id string) error
	// SetVerified records the verified digest of a finished single or partial upload.
	SetVerified(id string, sum []byte) error
	// VerifiedSHA256 returns the digest SetVerified recorded, or nil if none was: the
	// sender's late declaration (Upload-Checksum) is answered from it idempotently.
	VerifiedSHA256(id string) ([]byte, error)
	// SHA256 returns the digest of a finished single or partial upload, from the hash state
	// kept as the bytes arrived (never by reading the whole upload again).
	SHA256(id string) ([]byte, error)
	// Space reports what the store has room for; Known is false where it cannot tell (object
	// storage), and then nothing is refused up front.
	Space() (Space, error)
}

// Blob reads a finished upload. It is safe for concurrent ReadAt calls.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Abandonment says why the application gave an upload up: a contract error code and a
// sentence for the sender.
type Abandonment struct {
	Code, Message string
}

// Space is what the store has room for. The free-bytes figure is what /readyz reports.
type Space struct {
	Known    bool  // false where the store cannot tell (then no length is refused up front)
	Free     int64 // bytes available to ferry's user
	Reserve  int64 // bytes uploads never take
	Promised int64 // bytes unfinished uploads declared but have not sent yet
}

// Available is the largest length a Claim accepts now: free bytes less the reserve, the
// promised bytes and room for the upload's records.
func (sp Space) Available() int64 { return sp.Free - sp.Reserve - sp.Promised - RecordSlack }

// RecordSlack is room for an upload's records beside its bytes, counted by Claim.
const RecordSlack = 256 << 10

// StorageKeyTokenHash is the FileInfo.Storage key under which a creation hook may hand the store
// a value to keep with the upload (ferry stores the SHA-256 of the upload token there). Storage
// is never sent to clients.
const StorageKeyTokenHash = "TokenSHA256"

// Errors every store answers with, so callers test them with errors.Is. They are tusd errors so
// the handler answers with their status when they reach it.
var (
	ErrNotFinished      = handler.NewError("ERR_UPLOAD_NOT_FINISHED", "upload is not finished", http.StatusConflict)
	ErrPartialTaken     = handler.NewError("ERR_PARTIAL_IN_USE", "a partial upload already belongs to another final upload", http.StatusConflict)
	ErrPartialProtected = handler.NewError("ERR_PARTIAL_IN_USE", "this partial upload belongs to a final upload: terminate the final upload instead", http.StatusConflict)
	ErrNotPartial       = handler.NewError("ERR_INVALID_CONCAT", "a final upload may only reference partial uploads", http.StatusBadRequest)
	ErrPartialRepeated  = handler.NewError("ERR_PARTIAL_REPEATED", "a final upload lists each partial upload at most once", http.StatusBadRequest)
	// ErrNoRoom: a declared length does not fit in the space left.
	ErrNoRoom = handler.NewError("ERR_INSUFFICIENT_STORAGE",
		"the server does not have room for an upload of this length right now; nothing was stored: try again later", http.StatusInsufficientStorage)
)

var validID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// NewID returns a fresh random upload ID in the form every store accepts.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ValidID reports whether id has the shape of an upload ID; anything else never reaches storage.
func ValidID(id string) bool { return validID.MatchString(id) }

// Finished reports whether info describes a complete upload.
func Finished(info handler.FileInfo) bool {
	return !info.SizeIsDeferred && info.Offset == info.Size
}

// Partial is what a store recorded of one partial upload a final lists.
type Partial struct {
	Info    handler.FileInfo
	FinalID string // the final it was linked to, "" if none
}

// CheckConcat holds the rules every store's ConcatUploads applies before it
// links partials to the final upload final (one place, so the stores cannot
// drift apart): each is a partial, listed once (a partial listed
// twice would count twice in the file but once against every limit), not
// already part of another final that still exists (finalExists), and their
// sizes add up to the final's without overflowing. Whether each partial is
// finished is the store's to say (tusd asks before it concatenates).
func CheckConcat(final handler.FileInfo, partials []Partial, finalExists func(id string) bool) error {
	seen := make(map[string]bool, len(partials))
	var size int64
	for _, p := range partials {
		if !p.Info.IsPartial {
			return ErrNotPartial
		}
		if p.FinalID != "" && p.FinalID != final.ID && finalExists(p.FinalID) {
			return ErrPartialTaken
		}
		if seen[p.Info.ID] {
			return ErrPartialRepeated
		}
		seen[p.Info.ID] = true
		if size+p.Info.Size < size {
			return fmt.Errorf("concatenating upload %s: the partials' sizes overflow", final.ID)
		}
		size += p.Info.Size
	}
	if size != final.Size {
		return fmt.Errorf("concatenating upload %s: partials hold %d bytes, final is %d", final.ID, size, final.Size)
	}
	return nil
}
