package dataplane

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func gcsStart(t *testing.T, f *fixture, st Storage, key string) string {
	t.Helper()
	uf, err := f.p.UploadFields(st, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, body := do(t, http.MethodPost, uf.UploadURL, []byte{}, map[string]string{"x-goog-resumable": "start"})
	if status != http.StatusCreated || hdr.Get("Location") == "" {
		t.Fatalf("start resumable upload: %d %s", status, body)
	}
	return hdr.Get("Location")
}

func putChunk(t *testing.T, session string, data []byte, first, total int) (int, http.Header, string) {
	t.Helper()
	cr := fmt.Sprintf("bytes %d-%d/%d", first, first+len(data)-1, total)
	return do(t, http.MethodPut, session, data, map[string]string{"Content-Range": cr})
}

func TestGCSResumableUploadResumesAfterAStatusQuery(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodGCS)
	key := "ferry/folder/clip 1.mov"
	data := randomBytes(3<<20 + 12345)
	session := gcsStart(t, f, st, key)
	const chunk = 1 << 20

	status, hdr, body := putChunk(t, session, data[:chunk], 0, len(data))
	if status != http.StatusPermanentRedirect || hdr.Get("Range") != fmt.Sprintf("bytes=0-%d", chunk-1) {
		t.Fatalf("first chunk: %d Range=%q %s, want 308 bytes=0-%d", status, hdr.Get("Range"), body, chunk-1)
	}
	// The client lost track: ask the session what it holds, then resume from there.
	status, hdr, _ = do(t, http.MethodPut, session, nil, map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", len(data))})
	if status != http.StatusPermanentRedirect || hdr.Get("Range") != fmt.Sprintf("bytes=0-%d", chunk-1) {
		t.Fatalf("status query: %d Range=%q", status, hdr.Get("Range"))
	}
	// A resent overlapping chunk (1.5 MiB from 0.5 MiB) is accepted; only its new bytes are kept.
	status, hdr, body = putChunk(t, session, data[chunk/2:2*chunk], chunk/2, len(data))
	if status != http.StatusPermanentRedirect || hdr.Get("Range") != fmt.Sprintf("bytes=0-%d", 2*chunk-1) {
		t.Fatalf("overlapping chunk: %d Range=%q %s", status, hdr.Get("Range"), body)
	}
	if status, _, body = putChunk(t, session, data[2*chunk:3*chunk], 2*chunk, len(data)); status != http.StatusPermanentRedirect {
		t.Fatalf("third chunk: %d %s", status, body)
	}
	if status, _, body = putChunk(t, session, data[3*chunk:], 3*chunk, len(data)); status != http.StatusOK || !strings.Contains(body, `"storage#object"`) {
		t.Fatalf("final chunk: %d %s", status, body)
	}
	// Like real GCS, the final answer reports the object's MD5 and CRC32C for the client to check.
	sumMD5 := md5.Sum(data)
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	wantMD5 := base64.StdEncoding.EncodeToString(sumMD5[:])
	wantCRC := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc))
	if !strings.Contains(body, `"md5Hash":"`+wantMD5+`"`) || !strings.Contains(body, `"crc32c":"`+wantCRC+`"`) {
		t.Fatalf("final chunk answer lacks the object's hashes md5 %s crc32c %s: %s", wantMD5, wantCRC, body)
	}
	if got := readBack(t, f.p, st, key); string(got) != string(data) {
		t.Fatal("read back differs from the uploaded bytes")
	}
	status, _, _ = do(t, http.MethodPut, session, nil, map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", len(data))})
	if status != http.StatusOK {
		t.Fatalf("status query after completion: %d, want 200", status)
	}
}

func TestGCSRefusesBadChunksAndBadSessions(t *testing.T) {
	f := newFixture(t, Options{URLTTL: time.Hour})
	st := f.storage(t, MethodGCS)
	data := randomBytes(1 << 20)
	cases := []struct {
		name   string
		send   func(session string) (int, http.Header, string)
		status int
	}{
		{"chunk not a multiple of 256 KiB", func(s string) (int, http.Header, string) { return putChunk(t, s, data[:100000], 0, len(data)) }, http.StatusBadRequest},
		{"chunk leaving a gap", func(s string) (int, http.Header, string) { return putChunk(t, s, data[:256<<10], 256<<10, len(data)) }, http.StatusBadRequest},
		{"Content-Range longer than the body", func(s string) (int, http.Header, string) {
			return do(t, http.MethodPut, s, data[:256<<10], map[string]string{"Content-Range": "bytes 0-524287/1048576"})
		}, http.StatusBadRequest},
		{"tampered session signature", func(s string) (int, http.Header, string) {
			u, _ := url.Parse(s)
			q := u.Query()
			q.Set("X-Goog-Signature", strings.Repeat("0", 64))
			u.RawQuery = q.Encode()
			return putChunk(t, u.String(), data, 0, len(data))
		}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, _, body := c.send(gcsStart(t, f, st, "ferry/bad.bin")); status != c.status {
				t.Fatalf("got %d %s, want %d", status, body, c.status)
			}
		})
	}
	t.Run("expired start URL", func(t *testing.T) {
		uf, _ := f.p.UploadFields(st, "ferry/late.bin", 0)
		f.clock.Advance(2 * time.Hour)
		status, _, body := do(t, http.MethodPost, uf.UploadURL, []byte{}, map[string]string{"x-goog-resumable": "start"})
		if status != http.StatusForbidden || !strings.Contains(body, "expired") {
			t.Fatalf("got %d %s, want 403 expired", status, body)
		}
	})
}
