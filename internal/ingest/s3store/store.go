package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Layout under Prefix, per upload ID (32 lowercase hex digits):
//
//	ID.info       JSON record: tusd FileInfo, the multipart upload's id and parts, the SHA-256
//	              state covering exactly the bytes committed, ferry's bookkeeping
//	ID.bin        the bytes: a multipart upload while receiving, an object once complete
//	              (absent for a final upload, which is read across its partials' objects)
//	ID.tail       bytes past the last part, fewer than S3's minimum part size (an
//	              "incomplete part"), until the next PATCH makes them a part
//	ID.ack        present once the application acknowledged completion
//	ID.abandoned  present once the application gave the upload up: JSON reason
//
// The record is the truth. tusd's own s3store derives an upload's offset from ListParts; here
// the record names the parts, so a part sent but not yet recorded (a crash in between) is
// simply sent again under its number, and the hash state in the record always covers exactly
// the recorded bytes: a resume never reads bytes back to hash them.

const (
	// MinPartSize is S3's smallest part (but the last).
	MinPartSize = 5 << 20
	// DefaultPartSize is what a part is unless a long upload needs larger ones.
	DefaultPartSize = 16 << 20
	// maxParts is S3's limit on parts per multipart upload.
	maxParts = 10000
	// maxPartSize bounds the buffer a PATCH holds: 64 MiB parts reach 625 GiB per upload (a
	// parallel upload's partials each have as much).
	maxPartSize = 64 << 20
	// MaxUploadSize is the longest upload (a whole file, or one partial) the store takes.
	MaxUploadSize = maxParts * maxPartSize
)

// ErrTooLong refuses, before anything is stored, an upload longer than one multipart upload of
// bounded parts holds; a parallel upload's partials each have as much.
var ErrTooLong = handler.NewError("ERR_UPLOAD_SIZE_EXCEEDED",
	fmt.Sprintf("an upload (or each part of a parallel upload) may be at most %d bytes here: send it in parallel parts", int64(MaxUploadSize)),
	http.StatusRequestEntityTooLarge)

// Store is the S3 upload store. Build it with New.
type Store struct {
	c        *s3.Client
	bucket   string
	prefix   string // "" or ends with "/"
	partSize int64
}

// New returns a store on cfg's bucket, using client c.
func New(c *s3.Client, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3store: no bucket")
	}
	ps := cfg.PartSize
	if ps == 0 {
		ps = DefaultPartSize
	}
	if ps < MinPartSize || ps > maxPartSize {
		return nil, fmt.Errorf("s3store: part size %d is outside [%d, %d]", ps, MinPartSize, maxPartSize)
	}
	p := strings.Trim(cfg.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return &Store{c: c, bucket: cfg.Bucket, prefix: p, partSize: ps}, nil
}

// Open connects to the store cfg describes, with credentials from the default AWS chain.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	c, err := NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return New(c, cfg)
}

var _ store.Store = (*Store)(nil)

// UseIn plugs the store and all its extensions into a tusd composer.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseConcater(s)
	c.UseLengthDeferrer(s)
}

type part struct {
	N    int32
	ETag string
	Size int64
}

type record struct {
	Info         handler.FileInfo
	Concatenated bool   `json:",omitempty"`
	FinalID      string `json:",omitempty"`
	SHA256       string `json:",omitempty"`
	Created      time.Time
	// MultipartID is the S3 multipart upload receiving ID.bin's parts ("" until the first).
	MultipartID string `json:",omitempty"`
	Parts       []part `json:",omitempty"`
	// TailSize is how many bytes of ID.tail follow the parts.
	TailSize int64 `json:",omitempty"`
	// HashState is crypto/sha256's marshalled state over the Info.Offset bytes committed.
	HashState []byte `json:",omitempty"`
	// Complete: ID.bin is a whole object holding every byte.
	Complete bool `json:",omitempty"`
}

func (s *Store) key(id, ext string) string { return s.prefix + id + ext }

func isNotFound(err error) bool {
	var nk *types.NoSuchKey
	var nf *types.NotFound
	var ae smithy.APIError
	if errors.As(err, &nk) || errors.As(err, &nf) {
		return true
	}
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

func isNoSuchUpload(err error) bool {
	var nu *types.NoSuchUpload
	var ae smithy.APIError
	return errors.As(err, &nu) || (errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload")
}

func (s *Store) getSmall(ctx context.Context, key string) ([]byte, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, 1<<20))
}

func (s *Store) put(ctx context.Context, key string, b []byte) error {
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b)))})
	if err != nil {
		return fmt.Errorf("s3store: writing %s: %w", key, err)
	}
	return nil
}

func (s *Store) del(ctx context.Context, key string) error {
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3store: deleting %s: %w", key, err)
	}
	return nil
}

func (s *Store) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) readRecord(ctx context.Context, id string) (*record, error) {
	if !store.ValidID(id) {
		return nil, handler.ErrNotFound
	}
	b, err := s.getSmall(ctx, s.key(id, ".info"))
	if isNotFound(err) {
		return nil, handler.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("s3store: reading record of upload %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("s3store: decoding record of upload %s: %w", id, err)
	}
	return &r, nil
}

// writeRecord replaces the record: a PUT is atomic, so a crash leaves the old or the new one.
func (s *Store) writeRecord(ctx context.Context, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("s3store: encoding record of upload %s: %w", r.Info.ID, err)
	}
	return s.put(ctx, s.key(r.Info.ID, ".info"), b)
}

// NewUpload implements handler.DataStore. Nothing but the record is created: the multipart
// upload starts with the first part, so a small file is one PUT.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.ID == "" {
		info.ID = store.NewID()
	}
	if !store.ValidID(info.ID) {
		return nil, fmt.Errorf("s3store: creating upload: invalid id %q", info.ID)
	}
	if !info.IsFinal && info.Size > MaxUploadSize {
		// A final reads across its partials, so only what one multipart upload holds is bounded.
		return nil, ErrTooLong
	}
	storage := map[string]string{"Type": "s3store", "Bucket": s.bucket}
	if !info.IsFinal {
		storage["Key"] = s.key(info.ID, ".bin")
	}
	if v := info.Storage[store.StorageKeyTokenHash]; v != "" {
		storage[store.StorageKeyTokenHash] = v
	}
	info.Storage = storage
	info.Offset = 0
	r := &record{Info: info, Created: time.Now().UTC()}
	if err := s.writeRecord(ctx, r); err != nil {
		return nil, err
	}
	return &upload{s: s, rec: r}, nil
}

// GetUpload implements handler.DataStore.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	r, err := s.readRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return &upload{s: s, rec: r}, nil
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

// AsConcatableUpload implements handler.ConcaterDataStore.
func (s *Store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload { return u.(*upload) }

// AsLengthDeclarableUpload implements handler.LengthDeferrerDataStore.
func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

func bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// Info returns an upload's FileInfo as recorded.
func (s *Store) Info(id string) (handler.FileInfo, error) {
	ctx, cancel := bg()
	defer cancel()
	r, err := s.readRecord(ctx, id)
	if err != nil {
		return handler.FileInfo{}, err
	}
	return r.Info, nil
}

// FinalOf returns the existing final upload that references partial upload id, or "".
func (s *Store) FinalOf(id string) (string, error) {
	ctx, cancel := bg()
	defer cancel()
	r, err := s.readRecord(ctx, id)
	if err != nil {
		return "", err
	}
	if r.FinalID == "" {
		return "", nil
	}
	if _, err := s.readRecord(ctx, r.FinalID); errors.Is(err, handler.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return r.FinalID, nil
}

// IDs lists every upload in the store.
func (s *Store) IDs() ([]string, error) {
	ctx, cancel := bg()
	defer cancel()
	var ids []string
	pg := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3store: listing uploads: %w", err)
		}
		for _, o := range out.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if id, ok := strings.CutSuffix(name, ".info"); ok && store.ValidID(id) {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// LastActivity is the latest modification among the upload's record (rewritten with every
// part) and its abandonment.
func (s *Store) LastActivity(id string) (time.Time, error) {
	if !store.ValidID(id) {
		return time.Time{}, handler.ErrNotFound
	}
	ctx, cancel := bg()
	defer cancel()
	var last time.Time
	found := false
	for _, ext := range []string{".info", ".tail", ".abandoned"} {
		out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id, ext))})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("s3store: reading upload %s: %w", id, err)
		}
		found = true
		if t := aws.ToTime(out.LastModified); t.After(last) {
			last = t
		}
	}
	if !found {
		return time.Time{}, handler.ErrNotFound
	}
	return last, nil
}

// Acknowledge records durably that the application took note of the upload's completion.
func (s *Store) Acknowledge(id string) error {
	if !store.ValidID(id) {
		return handler.ErrNotFound
	}
	ctx, cancel := bg()
	defer cancel()
	return s.put(ctx, s.key(id, ".ack"), nil)
}

// Acknowledged reports whether Acknowledge ran for id.
func (s *Store) Acknowledged(id string) bool {
	if !store.ValidID(id) {
		return false
	}
	ctx, cancel := bg()
	defer cancel()
	ok, _ := s.exists(ctx, s.key(id, ".ack"))
	return ok
}

// Abandon records durably that the upload can never become a file. Its bytes stay until Remove.
func (s *Store) Abandon(id string, why store.Abandonment) error {
	ctx, cancel := bg()
	defer cancel()
	if _, err := s.readRecord(ctx, id); errors.Is(err, handler.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	b, err := json.Marshal(why)
	if err != nil {
		return fmt.Errorf("s3store: encoding why upload %s was abandoned: %w", id, err)
	}
	return s.put(ctx, s.key(id, ".abandoned"), b)
}

// Abandoned returns why the upload was abandoned, if it was.
func (s *Store) Abandoned(id string) (store.Abandonment, bool) {
	var why store.Abandonment
	if !store.ValidID(id) {
		return why, false
	}
	ctx, cancel := bg()
	defer cancel()
	b, err := s.getSmall(ctx, s.key(id, ".abandoned"))
	if err != nil {
		return why, false
	}
	if json.Unmarshal(b, &why) != nil || why.Code == "" {
		why = store.Abandonment{Code: "upload_abandoned", Message: "this upload can no longer become a file"}
	}
	return why, true
}

// Remove deletes an upload; a final upload takes its partials with it.
func (s *Store) Remove(id string) error {
	ctx, cancel := bg()
	defer cancel()
	r, err := s.readRecord(ctx, id)
	if errors.Is(err, handler.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Info.IsPartial && r.FinalID != "" {
		if _, err := s.readRecord(ctx, r.FinalID); err == nil {
			return store.ErrPartialProtected
		}
	}
	if r.Info.IsFinal {
		for _, pid := range r.Info.PartialUploads {
			p, err := s.readRecord(ctx, pid)
			if err != nil || p.FinalID != id {
				continue // not ours: never delete another final's partial
			}
			if err := s.removeObjects(ctx, p); err != nil {
				return err
			}
		}
	}
	return s.removeObjects(ctx, r)
}

// removeObjects deletes the record last, so a crash midway leaves a record a retry can finish.
func (s *Store) removeObjects(ctx context.Context, r *record) error {
	id := r.Info.ID
	if r.MultipartID != "" && !r.Complete {
		_, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket,
			Key: aws.String(s.key(id, ".bin")), UploadId: &r.MultipartID})
		if err != nil && !isNoSuchUpload(err) && !isNotFound(err) {
			return fmt.Errorf("s3store: aborting the multipart upload of upload %s: %w", id, err)
		}
	}
	for _, ext := range []string{".bin", ".tail", ".ack", ".abandoned", ".info"} {
		if err := s.del(ctx, s.key(id, ext)); err != nil {
			return err
		}
	}
	return nil
}

// SetVerified records the verified digest of a finished single or partial upload.
func (s *Store) SetVerified(id string, sum []byte) error {
	ctx, cancel := bg()
	defer cancel()
	r, err := s.readRecord(ctx, id)
	if err != nil {
		return err
	}
	r.SHA256 = hex.EncodeToString(sum)
	return s.writeRecord(ctx, r)
}

// SHA256 returns the digest of a finished single or partial upload from the recorded state.
func (s *Store) SHA256(id string) ([]byte, error) {
	ctx, cancel := bg()
	defer cancel()
	r, err := s.readRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Info.IsFinal {
		return nil, fmt.Errorf("s3store: upload %s is a final upload: its digest is not computed", id)
	}
	if !store.Finished(r.Info) {
		return nil, store.ErrNotFinished
	}
	h, err := r.hash()
	if err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func (r *record) hash() (hash.Hash, error) {
	h := sha256.New()
	if len(r.HashState) == 0 {
		if r.Info.Offset != 0 {
			return nil, fmt.Errorf("s3store: upload %s has %d bytes but no hash state", r.Info.ID, r.Info.Offset)
		}
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(r.HashState); err != nil {
		return nil, fmt.Errorf("s3store: restoring the hash state of upload %s: %w", r.Info.ID, err)
	}
	return h, nil
}

// Space: object storage has no free-space figure worth refusing uploads by.
func (s *Store) Space() (store.Space, error) { return store.Space{Known: false}, nil }

// Claim never refuses: the bucket's room is the provider's business.
func (s *Store) Claim(id string, size int64) error { return nil }

// Release has nothing to drop.
func (s *Store) Release(id string) {}

// CheckWritable puts and deletes a probe object under the prefix.
func (s *Store) CheckWritable(ctx context.Context) error {
	key := s.prefix + ".probe-" + store.NewID()
	if err := s.put(ctx, key, []byte("ferry")); err != nil {
		return err
	}
	return s.del(ctx, key)
}

// partPool holds part buffers by size: one per PATCH in progress, so memory is bounded by the
// number of concurrent PATCHes, never by upload sizes.
var partPools sync.Map // int64 -> *sync.Pool

func getPart(n int64) *[]byte {
	p, _ := partPools.LoadOrStore(n, &sync.Pool{New: func() any { b := make([]byte, n); return &b }})
	return p.(*sync.Pool).Get().(*[]byte)
}

func putPart(n int64, b *[]byte) {
	if p, ok := partPools.Load(n); ok {
		p.(*sync.Pool).Put(b)
	}
}
