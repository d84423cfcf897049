package dataplane

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

func azClient(t *testing.T, sasURL string) *blockblob.Client {
	t.Helper()
	c, err := blockblob.NewClientWithNoCredential(sasURL, &blockblob.ClientOptions{ClientOptions: policy.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: -1}, // a refusal must surface, not be retried
	}})
	if err != nil {
		t.Fatalf("azblob client for %s: %v", sasURL, err)
	}
	return c
}

func blockID(i int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "block-%06d", i))
}

func TestAzureSDKUploadsThroughTheSASURL(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodAzure)
	ctx := context.Background()

	t.Run("Put Blob", func(t *testing.T) {
		data := randomBytes(300 << 10)
		uf, err := f.p.UploadFields(st, "ferry/small clip.mov", int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := azClient(t, uf.UploadURL).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), nil); err != nil {
			t.Fatalf("Upload: %v", err)
		}
		if got := readBack(t, f.p, st, "ferry/small clip.mov"); !bytes.Equal(got, data) {
			t.Fatal("read back differs")
		}
	})

	t.Run("StageBlock, GetBlockList, CommitBlockList", func(t *testing.T) {
		data := randomBytes(3<<20 + 7)
		key := "ferry/big clip é.mov"
		uf, _ := f.p.UploadFields(st, key, int64(len(data)))
		c := azClient(t, uf.UploadURL)
		var ids []string
		for i, off := 0, 0; off < len(data); i, off = i+1, off+1<<20 {
			ids = append(ids, blockID(i))
			if _, err := c.StageBlock(ctx, blockID(i), streaming.NopCloser(bytes.NewReader(data[off:min(off+1<<20, len(data))])), nil); err != nil {
				t.Fatalf("StageBlock %d: %v", i, err)
			}
		}
		bl, err := c.GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
		if err != nil {
			t.Fatalf("GetBlockList: %v", err)
		}
		if len(bl.UncommittedBlocks) != len(ids) {
			t.Fatalf("GetBlockList: %d uncommitted blocks, want %d", len(bl.UncommittedBlocks), len(ids))
		}
		if _, err := c.CommitBlockList(ctx, ids, nil); err != nil {
			t.Fatalf("CommitBlockList: %v", err)
		}
		if got := readBack(t, f.p, st, key); !bytes.Equal(got, data) {
			t.Fatal("read back differs")
		}
		if _, err := c.CommitBlockList(ctx, []string{blockID(99)}, nil); !bloberror.HasCode(err, bloberror.InvalidBlockList) {
			t.Fatalf("commit of an unknown block: %v, want InvalidBlockList", err)
		}
	})
}

func TestAzureRefusesTamperedAndExpiredSAS(t *testing.T) {
	f := newFixture(t, Options{URLTTL: time.Hour})
	st := f.storage(t, MethodAzure)
	ctx := context.Background()
	uf, _ := f.p.UploadFields(st, "ferry/x.bin", 3)
	cases := []struct {
		name string
		url  func() string
	}{
		{"tampered signature", func() string {
			u, _ := url.Parse(uf.UploadURL)
			q := u.Query()
			q.Set("sig", base64.StdEncoding.EncodeToString(make([]byte, 32)))
			u.RawQuery = q.Encode()
			return u.String()
		}},
		{"extended expiry", func() string {
			u, _ := url.Parse(uf.UploadURL)
			q := u.Query()
			q.Set("se", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339))
			u.RawQuery = q.Encode()
			return u.String()
		}},
		{"expired", func() string { f.clock.Advance(2 * time.Hour); return uf.UploadURL }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := azClient(t, c.url()).Upload(ctx, streaming.NopCloser(bytes.NewReader([]byte("abc"))), nil)
			if !bloberror.HasCode(err, bloberror.AuthenticationFailed) {
				t.Fatalf("Upload: %v, want 403 AuthenticationFailed", err)
			}
		})
	}
}
