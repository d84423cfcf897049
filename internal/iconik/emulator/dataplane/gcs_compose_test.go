package dataplane

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func composeBody(keys ...string) []byte {
	var b strings.Builder
	b.WriteString("<ComposeRequest>")
	for _, k := range keys {
		fmt.Fprintf(&b, "<Component><Name>%s</Name></Component>", k)
	}
	b.WriteString("</ComposeRequest>")
	return []byte(b.String())
}

// putParts uploads each part as its own object and returns the part keys.
func putParts(t *testing.T, f *fixture, st Storage, prefix string, parts [][]byte) ([]string, []GCSObject) {
	t.Helper()
	var keys []string
	var objs []GCSObject
	for i, part := range parts {
		o, err := f.p.GCSObjectURLs(st, fmt.Sprintf("%s/%d", prefix, i+1))
		if err != nil {
			t.Fatal(err)
		}
		if status, _, body := do(t, http.MethodPut, o.UploadURL, part, map[string]string{"Content-MD5": md5b64(part)}); status != http.StatusOK {
			t.Fatalf("put part %d: %d %s", i+1, status, body)
		}
		keys, objs = append(keys, o.Key), append(objs, o)
	}
	return keys, objs
}

func TestGCSCompositeUploadComposesPartsInOrderAndDeletesThem(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodGCS)
	data := randomBytes(3*100_000 + 17)
	parts := [][]byte{data[:100_000], data[100_000:200_000], data[200_000:]}
	keys, objs := putParts(t, f, st, "ferry/clip.mov.parts", parts)

	if status, _, body := do(t, http.MethodGet, objs[1].DownloadURL, nil, nil); status != http.StatusOK || body != string(parts[1]) {
		t.Fatalf("download part 2: %d, %d bytes", status, len(body))
	}
	u, err := f.p.GCSComposeURL(st, "ferry/clip.mov", "video/quicktime")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := do(t, http.MethodPut, u, composeBody(keys...), map[string]string{"Content-Type": "video/quicktime"}); status != http.StatusOK {
		t.Fatalf("compose: %d %s", status, body)
	}
	if got := readBack(t, f.p, st, "ferry/clip.mov"); string(got) != string(data) {
		t.Fatal("composed object differs from the parts in order")
	}
	for i, o := range objs {
		if status, _, body := do(t, http.MethodDelete, o.DeleteURL, nil, nil); status != http.StatusNoContent {
			t.Fatalf("delete part %d: %d %s", i+1, status, body)
		}
		if _, _, err := f.p.Open(st, o.Key); err == nil {
			t.Fatalf("part %d still readable after its delete", i+1)
		}
	}
	if got := readBack(t, f.p, st, "ferry/clip.mov"); string(got) != string(data) {
		t.Fatal("deleting the parts changed the composed object")
	}
}

func TestGCSComposeRefusesWhatGCSRefuses(t *testing.T) {
	f := newFixture(t, Options{URLTTL: time.Hour})
	st := f.storage(t, MethodGCS)
	keys, objs := putParts(t, f, st, "ferry/p", [][]byte{[]byte("a"), []byte("b")})
	many := make([]string, GCSMaxComposeSources+1)
	for i := range many {
		many[i] = keys[i%2]
	}
	composeURL := func(ct string) string {
		u, err := f.p.GCSComposeURL(st, "ferry/out.bin", ct)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	cases := []struct {
		name     string
		method   string
		url      string
		body     []byte
		header   map[string]string
		status   int
		wantCode string
	}{
		{"a missing source", http.MethodPut, composeURL(""), composeBody(keys[0], "ferry/p/9"), nil, http.StatusNotFound, "NoSuchKey"},
		{"more than 32 sources", http.MethodPut, composeURL(""), composeBody(many...), nil, http.StatusBadRequest, "InvalidArgument"},
		{"no source", http.MethodPut, composeURL(""), composeBody(), nil, http.StatusBadRequest, "InvalidArgument"},
		{"a body that is not a ComposeRequest", http.MethodPut, composeURL(""), []byte("{}"), nil, http.StatusBadRequest, "MalformedXML"},
		{"another Content-Type than signed", http.MethodPut, composeURL("video/mp4"), composeBody(keys...), map[string]string{"Content-Type": "text/plain"}, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"a download URL used to upload", http.MethodPut, objs[0].DownloadURL, []byte("x"), nil, http.StatusForbidden, "SignatureDoesNotMatch"},
		{"a wrong Content-MD5", http.MethodPut, objs[0].UploadURL, []byte("x"), map[string]string{"Content-MD5": md5b64([]byte("y"))}, http.StatusBadRequest, "BadDigest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, _, body := do(t, c.method, c.url, c.body, c.header)
			if status != c.status || !strings.Contains(body, "<Code>"+c.wantCode+"</Code>") {
				t.Fatalf("got %d %s, want %d %s", status, body, c.status, c.wantCode)
			}
		})
	}
	t.Run("expired compose URL", func(t *testing.T) {
		u := composeURL("")
		f.clock.Advance(2 * time.Hour)
		status, _, body := do(t, http.MethodPut, u, composeBody(keys...), nil)
		if status != http.StatusForbidden || !strings.Contains(body, "<Code>ExpiredToken</Code>") {
			t.Fatalf("got %d %s, want 403 ExpiredToken", status, body)
		}
	})
}

func TestGCSComposeServerSideNamesTheMissingSource(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodGCS)
	keys, _ := putParts(t, f, st, "ferry/s", [][]byte{[]byte("one"), []byte("two")})
	_, err := f.p.GCSCompose(st, "ferry/s.bin", []string{keys[0], "ferry/s/3", keys[1]})
	var missing *NoSuchObjectError
	if !errors.As(err, &missing) || missing.Key != "ferry/s/3" {
		t.Fatalf("compose with a missing source: %v, want NoSuchObjectError for ferry/s/3", err)
	}
	// The destination may be one of its sources (appending, as clients do past 32 parts).
	if _, err := f.p.GCSCompose(st, keys[0], []string{keys[0], keys[1]}); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, f.p, st, keys[0]); string(got) != "onetwo" {
		t.Fatalf("append compose: %q", got)
	}
	if err := f.p.GCSDelete(st, keys...); err != nil {
		t.Fatal(err)
	}
	if err := f.p.GCSDelete(st, keys...); err != nil {
		t.Fatalf("deleting objects already gone: %v", err)
	}
	if _, err := f.p.GCSObjectURLs(Storage{ID: "s3", Method: MethodS3, Dir: t.TempDir()}, "k"); err == nil {
		t.Fatal("GCS object URLs for an S3 storage: no error")
	}
}
