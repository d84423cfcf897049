package delivery

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"sync"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/transfer"
)

// target adapts one iconik file record to every transfer target interface
// (S3, GCS, Azure, B2). The upload fields of the record in hand are used
// once; every later request for a URL asks iconik for fresh ones
// (generate_signed_post_url=true), since the uploader asks again only when a
// URL was refused as expired.
type target struct {
	cl       *iconik.Client
	assetID  string
	method   string
	signsMD5 bool
	mu       sync.Mutex
	file     *iconik.File
	fresh    bool // file's upload fields not handed out yet
}

func newTarget(cl *iconik.Client, f *iconik.File, fresh bool, method string, signsMD5 bool) *target {
	return &target{cl: cl, assetID: f.AssetID, method: method, signsMD5: signsMD5, file: f, fresh: fresh}
}

func (t *target) Method() string { return t.method }

// record returns a file record whose upload fields have not been handed out.
func (t *target) record(ctx context.Context) (*iconik.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fresh {
		t.fresh = false
		return t.file, nil
	}
	f, err := t.cl.FileGet(ctx, t.assetID, t.file.ID, iconik.FileGetParams{GenerateSignedPostURL: true})
	if err != nil {
		return nil, fmt.Errorf("asking iconik for fresh upload URLs: %w", err)
	}
	t.file = f
	return f, nil
}

func (t *target) S3PutURL(ctx context.Context) (string, error) {
	f, err := t.record(ctx)
	if err != nil {
		return "", err
	}
	if f.UploadURL == "" {
		return "", fmt.Errorf("iconik gave file %s no upload_url", f.ID)
	}
	return f.UploadURL, nil
}

func (t *target) S3CreateURL(ctx context.Context) (string, error) {
	f, err := t.record(ctx)
	if err != nil {
		return "", err
	}
	if f.MultipartUploadURL == "" {
		return "", fmt.Errorf("iconik gave file %s no multipart_upload_url", f.ID)
	}
	return f.MultipartUploadURL, nil
}

func (t *target) S3PartURLs(ctx context.Context, uploadID string, parts []transfer.S3Part) ([]transfer.PartURL, error) {
	if t.signsMD5 {
		req := make([]iconik.S3PartChecksum, len(parts))
		for i, p := range parts {
			req[i] = iconik.S3PartChecksum{PartNumber: p.Number, Checksum: p.MD5}
		}
		urls, err := t.cl.S3PartURLs(ctx, t.assetID, t.file.ID, iconik.S3PartURLsParams{UploadID: uploadID, Parts: req})
		if err != nil {
			return nil, err
		}
		return partURLs(urls), nil
	}
	// Part URLs come in pages of 100 of parts 1..parts_num: ask for the
	// pages holding the wanted parts only.
	const per = 100
	maxN := 0
	for _, p := range parts {
		maxN = max(maxN, p.Number)
	}
	byNumber := map[int]string{}
	pages := map[int]bool{}
	for _, p := range parts {
		pages[(p.Number-1)/per+1] = true
	}
	for pg := range pages {
		urls, err := t.cl.S3PartURLs(ctx, t.assetID, t.file.ID, iconik.S3PartURLsParams{UploadID: uploadID, PartsNum: maxN, Page: pg, PerPage: per})
		if err != nil {
			return nil, err
		}
		for _, u := range urls {
			byNumber[u.Number] = u.URL
		}
	}
	out := make([]transfer.PartURL, 0, len(parts))
	for _, p := range parts {
		u, ok := byNumber[p.Number]
		if !ok {
			return nil, fmt.Errorf("iconik returned no URL for part %d", p.Number)
		}
		out = append(out, transfer.PartURL{Number: p.Number, URL: u})
	}
	return out, nil
}

func partURLs(urls []iconik.PartURL) []transfer.PartURL {
	out := make([]transfer.PartURL, len(urls))
	for i, u := range urls {
		out[i] = transfer.PartURL{Number: u.Number, URL: u.URL}
	}
	return out
}

func (t *target) S3CompleteURL(ctx context.Context, uploadID string) (string, error) {
	u, err := t.cl.S3MultipartURLs(ctx, t.assetID, t.file.ID, iconik.S3MultipartURLsParams{UploadID: uploadID, Type: "complete_url"})
	if err != nil {
		return "", err
	}
	return u.CompleteURL, nil
}

func (t *target) S3AbortURL(ctx context.Context, uploadID string) (string, error) {
	u, err := t.cl.S3MultipartURLs(ctx, t.assetID, t.file.ID, iconik.S3MultipartURLsParams{UploadID: uploadID, Type: "abort_url"})
	if err != nil {
		return "", err
	}
	return u.AbortURL, nil
}

func (t *target) S3SignsMD5() bool { return t.signsMD5 }

func (t *target) GCSUploadURL(ctx context.Context) (string, error) {
	f, err := t.record(ctx)
	if err != nil {
		return "", err
	}
	return f.UploadURL, nil
}

func (t *target) AzureBlobURL(ctx context.Context) (string, error) {
	f, err := t.record(ctx)
	if err != nil {
		return "", err
	}
	return f.UploadURL, nil
}

func (t *target) B2Upload(ctx context.Context) (transfer.B2Upload, error) {
	f, err := t.record(ctx)
	if err != nil {
		return transfer.B2Upload{}, err
	}
	if f.UploadURL == "" { // B2 signing failed: ask again (CONTRACT.md §2.7)
		if f, err = t.record(ctx); err != nil {
			return transfer.B2Upload{}, err
		}
	}
	return transfer.B2Upload{URL: f.UploadURL, AuthorizationToken: f.UploadCredential("authorizationToken"), FileName: f.UploadFilename}, nil
}

func (t *target) B2StartLarge(ctx context.Context, fileID string) (transfer.B2Large, error) {
	// Given the fileID of a large file started earlier (by this attempt or
	// one before a restart), iconik hands out a fresh part URL for it.
	l, err := t.cl.B2LargeStart(ctx, t.assetID, t.file.ID, iconik.B2LargeStartParams{UploadFileID: fileID})
	if err != nil {
		return transfer.B2Large{}, err
	}
	return transfer.B2Large{FileID: l.UploadFileID, UploadURL: l.UploadURL, AuthorizationToken: l.AuthorizationToken}, nil
}

func (t *target) B2FinishLarge(ctx context.Context, fileID string, sha1s []string) error {
	return t.cl.B2LargeFinish(ctx, t.assetID, t.file.ID, iconik.B2LargeFinishParams{UploadFileID: fileID, SHA1List: sha1s})
}

func (t *target) B2CancelLarge(ctx context.Context, fileID string) error {
	return t.cl.B2LargeCancel(ctx, t.assetID, t.file.ID, iconik.B2LargeCancelParams{UploadFileID: fileID})
}

// md5Source hashes the bytes of src in file order as the uploader reads
// them, so iconik's checksum (MD5 hex) costs no second read of the file. The
// uploader reads every byte in order once to compute the SHA-256; reads out
// of order (parts in flight) contribute only what extends the hashed prefix.
type md5Source struct {
	src  transfer.Source
	mu   sync.Mutex
	h    hash.Hash
	next int64
}

func newMD5Source(src transfer.Source) *md5Source { return &md5Source{src: src, h: md5.New()} }

// md5RangeSource keeps a zero-copy source zero-copy: parts go out with
// sendfile from their own descriptors, while the uploader's in-order scan
// (through ReadAt) still feeds the MD5.
type md5RangeSource struct {
	*md5Source
	ro transfer.RangeOpener
}

func (m md5RangeSource) OpenRange(off, n int64) (*os.File, int64, error) {
	return m.ro.OpenRange(off, n)
}

// uploadSource wraps m for the uploader, keeping src's optional capabilities.
func uploadSource(m *md5Source) transfer.Source {
	if ro, ok := m.src.(transfer.RangeOpener); ok {
		return md5RangeSource{m, ro}
	}
	return m
}

func (m *md5Source) Size() int64 { return m.src.Size() }

func (m *md5Source) ReadAt(b []byte, off int64) (int, error) {
	n, err := m.src.ReadAt(b, off)
	if n > 0 {
		m.mu.Lock()
		if off <= m.next && off+int64(n) > m.next {
			m.h.Write(b[m.next-off : n])
			m.next = off + int64(n)
		}
		m.mu.Unlock()
	}
	return n, err
}

// Sum returns the MD5 hex when every byte was hashed, else "".
func (m *md5Source) Sum() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next != m.src.Size() {
		return ""
	}
	return hex.EncodeToString(m.h.Sum(nil))
}
