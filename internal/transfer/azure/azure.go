package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferryhq/ferry/internal/transfer"
)

// Azure's limits.
const (
	MaxBlockSize = 4000 << 20
	MaxBlocks    = 50000
	MaxPutBlob   = 5000 << 20
	apiVersion   = "2021-08-06"
)

const provider = "azure"

// Uploader sends files to Azure block blobs.
type Uploader struct{ o transfer.Options }

// New returns an Azure uploader.
func New(o transfer.Options) *Uploader { return &Uploader{o: o.WithDefaults()} }

// PartSize is the block size used for a file of size bytes.
func (u *Uploader) PartSize(size int64) int64 {
	return transfer.PartSizeFor(size, u.o.PartSize, 1<<10, MaxBlocks)
}

// BlockID is the deterministic id of block n: a resumed upload finds its
// blocks again by id. All ids of a blob have the same length, as Azure requires.
func BlockID(partSize int64, n int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "ferry-%012d-%06d", partSize, n))
}

// Upload sends src to target.
func (u *Uploader) Upload(ctx context.Context, src transfer.Source, target transfer.Target, p transfer.Params) (transfer.Result, error) {
	t, ok := target.(transfer.AzureTarget)
	if !ok {
		return transfer.Result{}, fmt.Errorf("azure: target %T (method %s) is not an Azure target", target, target.Method())
	}
	size := src.Size()
	partSize := u.PartSize(size)
	if partSize > MaxBlockSize {
		return transfer.Result{}, fmt.Errorf("azure: file of %d bytes exceeds %d blocks of 4000 MiB", size, MaxBlocks)
	}
	if size <= partSize && size <= MaxPutBlob {
		return u.putBlob(ctx, src, t, p)
	}
	return u.blocks(ctx, src, t, p, partSize)
}

// withQuery appends query parameters to a SAS URL.
func withQuery(sas string, kv ...string) string {
	var b strings.Builder
	b.WriteString(sas)
	sep := "&"
	if !strings.Contains(sas, "?") {
		sep = "?"
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(sep)
		b.WriteString(kv[i])
		b.WriteString("=")
		b.WriteString(url.QueryEscape(kv[i+1]))
		sep = "&"
	}
	return b.String()
}

func (u *Uploader) putBlob(ctx context.Context, src transfer.Source, t transfer.AzureTarget, p transfer.Params) (transfer.Result, error) {
	size := src.Size()
	parts := transfer.PlanParts(size, max(size, 1))
	scan := transfer.NewScanner(src, parts, transfer.Each(md5.New), sha256.New())
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	scan.Allow(1)
	go scan.Run(sctx)
	var contentMD5 string
	if size > 0 {
		d, err := scan.PartDigest(ctx, 0)
		if err != nil {
			return transfer.Result{}, fmt.Errorf("azure: hash file: %w", err)
		}
		contentMD5 = base64.StdEncoding.EncodeToString(d)
	} else {
		contentMD5 = base64.StdEncoding.EncodeToString(md5.New().Sum(nil))
	}
	tr := transfer.NewTracker(p, transfer.State{Method: "AZURE", Size: size})
	var etag string
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		if attempt > 1 {
			tr.Retrying(1)
		}
		sas, err := t.AzureBlobURL(ctx)
		if err != nil {
			return fmt.Errorf("azure: get blob URL: %w", err)
		}
		var body io.Reader = http.NoBody
		if size > 0 {
			body = tr.Body(src, transfer.Part{Number: 1, Size: size}, nil)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, sas, body)
		if err != nil {
			closeBody(body)
			return fmt.Errorf("azure: put blob: bad SAS URL %s: %w", transfer.Redact(sas), err)
		}
		req.ContentLength = size
		req.Header.Set("x-ms-blob-type", "BlockBlob")
		req.Header.Set("x-ms-version", apiVersion)
		req.Header.Set("Content-MD5", contentMD5)
		req.Header.Set("x-ms-blob-content-md5", contentMD5)
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "put blob", 0)
		if err != nil {
			return err
		}
		drain(resp)
		if got := resp.Header.Get("Content-MD5"); got != "" && got != contentMD5 {
			return &transfer.Error{Provider: provider, Step: "put blob", Status: resp.StatusCode, Err: fmt.Errorf("%w: server Content-MD5 %s, read %s", transfer.ErrChecksum, got, contentMD5)}
		}
		etag = strings.Trim(resp.Header.Get("ETag"), `"`)
		return nil
	})
	if err != nil {
		return transfer.Result{}, err
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("azure: read source: %w", err)
	}
	return transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: etag, Checked: []string{"content-md5"}}, nil
}

func (u *Uploader) blocks(ctx context.Context, src transfer.Source, t transfer.AzureTarget, p transfer.Params, partSize int64) (transfer.Result, error) {
	size := src.Size()
	parts := transfer.PlanParts(size, partSize)
	state := transfer.State{Method: "AZURE", Size: size, PartSize: partSize}
	if r := p.Resume; r != nil && r.Method == "AZURE" && r.Size == size && r.PartSize == partSize {
		state.Parts = slices.Clone(r.Parts)
	}
	done := map[int]bool{}
	if p.Resume != nil {
		// The block list is the truth: blocks are found again by their
		// deterministic ids, even those acknowledged after the last checkpoint.
		have, err := u.listBlocks(ctx, t)
		if err != nil {
			u.o.Logger.Warn("azure: get block list failed, trusting the saved state", "err", err)
			for _, ps := range state.Parts {
				done[ps.Number] = true
			}
		} else {
			state.Parts = nil
			for _, pt := range parts {
				if have[BlockID(partSize, pt.Number)] == pt.Size {
					done[pt.Number] = true
					state.Parts = append(state.Parts, transfer.PartState{Number: pt.Number, Size: pt.Size})
				}
			}
		}
	}
	tr := transfer.NewTracker(p, state)
	scan := transfer.NewScanner(src, parts, transfer.Each(transfer.NewMD5), sha256.New())
	scan.Lanes(transfer.MD5Lanes)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	// Each block waits for its MD5 before it is sent: keep a whole batch of
	// lanes hashed ahead of the senders.
	lead := 2*u.o.Parallelism + transfer.MD5Lanes
	scan.Allow(lead)
	go scan.Run(sctx)

	err := transfer.RunParts(ctx, u.o.Parallelism, parts,
		func(pt transfer.Part) bool { return done[pt.Number] },
		func(i int) { scan.Allow(i + lead) },
		func(ctx context.Context, pt transfer.Part) error {
			return u.putBlock(ctx, src, t, pt, partSize, scan, tr)
		})
	if err != nil {
		return transfer.Result{}, err
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		return transfer.Result{}, fmt.Errorf("azure: read source: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><BlockList>`)
	for _, pt := range parts {
		fmt.Fprintf(&b, "<Latest>%s</Latest>", BlockID(partSize, pt.Number))
	}
	b.WriteString("</BlockList>")
	var etag string
	err = u.o.Retry(ctx, func(attempt int, refresh bool) error {
		sas, err := t.AzureBlobURL(ctx)
		if err != nil {
			return fmt.Errorf("azure: get blob URL: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, withQuery(sas, "comp", "blocklist"), bytes.NewReader(b.Bytes()))
		if err != nil {
			return fmt.Errorf("azure: put block list: bad SAS URL %s: %w", transfer.Redact(sas), err)
		}
		req.Header.Set("Content-Type", "application/xml")
		req.Header.Set("x-ms-version", apiVersion)
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "put block list", 0)
		if err != nil {
			return err
		}
		drain(resp)
		etag = strings.Trim(resp.Header.Get("ETag"), `"`)
		return nil
	})
	if err != nil {
		return transfer.Result{}, err
	}
	return transfer.Result{Size: size, SHA256: hex.EncodeToString(sums[0]), ETag: etag, Parts: len(parts), Resumed: len(done),
		Checked: []string{"block-content-md5"}}, nil
}

func (u *Uploader) putBlock(ctx context.Context, src transfer.Source, t transfer.AzureTarget, pt transfer.Part, partSize int64, scan *transfer.Scanner, tr *transfer.Tracker) error {
	// Content-MD5 goes in the header, so the block is hashed before it is
	// sent (the scanner runs ahead; the send re-reads from the page cache)
	// and Azure itself rejects damaged bytes (Md5Mismatch).
	d, err := scan.PartDigest(ctx, pt.Number-1)
	if err != nil {
		return fmt.Errorf("azure: hash block %d: %w", pt.Number, err)
	}
	md5b64 := base64.StdEncoding.EncodeToString(d)
	id := BlockID(partSize, pt.Number)
	return u.o.Retry(ctx, func(attempt int, refresh bool) error {
		if attempt > 1 {
			tr.Retrying(pt.Number)
		}
		sas, err := t.AzureBlobURL(ctx)
		if err != nil {
			return fmt.Errorf("azure: get blob URL: %w", err)
		}
		body := tr.Body(src, pt, nil)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, withQuery(sas, "comp", "block", "blockid", id), body)
		if err != nil {
			body.Close()
			return fmt.Errorf("azure: put block %d: bad SAS URL %s: %w", pt.Number, transfer.Redact(sas), err)
		}
		req.ContentLength = pt.Size
		req.Header.Set("Content-MD5", md5b64)
		req.Header.Set("x-ms-version", apiVersion)
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "put block", pt.Number)
		if err != nil {
			return err
		}
		drain(resp)
		if got := resp.Header.Get("Content-MD5"); got != "" && got != md5b64 {
			return &transfer.Error{Provider: provider, Step: "put block", Part: pt.Number, Status: resp.StatusCode,
				Err: fmt.Errorf("%w: server Content-MD5 %s, read %s", transfer.ErrChecksum, got, md5b64)}
		}
		if err := tr.Acked(transfer.PartState{Number: pt.Number, Size: pt.Size}); err != nil {
			return fmt.Errorf("azure: checkpoint block %d: %w", pt.Number, err)
		}
		return nil
	})
}

// listBlocks returns block id -> size of the blob's committed and uncommitted blocks.
func (u *Uploader) listBlocks(ctx context.Context, t transfer.AzureTarget) (map[string]int64, error) {
	out := map[string]int64{}
	err := u.o.Retry(ctx, func(attempt int, refresh bool) error {
		sas, err := t.AzureBlobURL(ctx)
		if err != nil {
			return fmt.Errorf("azure: get blob URL: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, withQuery(sas, "comp", "blocklist", "blocklisttype", "all"), nil)
		if err != nil {
			return fmt.Errorf("azure: get block list: bad SAS URL %s: %w", transfer.Redact(sas), err)
		}
		req.Header.Set("x-ms-version", apiVersion)
		resp, err := transfer.Do(u.o.HTTPClient, req, provider, "get block list", 0)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var x struct {
			Committed   []block `xml:"CommittedBlocks>Block"`
			Uncommitted []block `xml:"UncommittedBlocks>Block"`
		}
		if err := xml.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&x); err != nil {
			return &transfer.Error{Provider: provider, Step: "get block list", Status: resp.StatusCode, Err: fmt.Errorf("unreadable answer: %w", err)}
		}
		for _, b := range append(x.Committed, x.Uncommitted...) {
			out[b.Name] = b.Size
		}
		return nil
	})
	return out, err
}

type block struct {
	Name string `xml:"Name"`
	Size int64  `xml:"Size"`
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func closeBody(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
}
