package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPIDescribesTheDownloadRoutesAndHowLinksCount(t *testing.T) {
	f := newFixture(t)
	_, body := f.do("GET", "/api/v1/openapi.json", nil)
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	for _, p := range []string{"/d/{token}/files/{file}", "/d/{token}/zip"} {
		item := doc.Paths.Find(p)
		if item == nil || item.Get == nil {
			t.Fatalf("%s is not described", p)
		}
		if !strings.Contains(item.Get.Description, "counts bytes, not requests") || item.Get.Responses.Status(410) == nil {
			t.Errorf("%s does not say how a limited link counts or that it answers 410", p)
		}
	}
	for _, name := range []string{"Link", "LinkRequest"} {
		s := doc.Components.Schemas[name]
		if s == nil || !strings.Contains(s.Value.Properties["max_downloads"].Value.Description, "counts bytes") {
			t.Errorf("schema %s: max_downloads does not say how it counts", name)
		}
	}
}

// TestChargePlanMatchesWhatIsServed: the bytes charged before a download
// (planBlob's dry run) are exactly the bytes http.ServeContent then sends,
// for every shape of request.
func TestChargePlanMatchesWhatIsServed(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const etag = "abc"
	cases := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"no range", nil, 200},
		{"from byte 0", []string{"Range", "bytes=0-"}, 206},
		{"from byte 1", []string{"Range", "bytes=1-"}, 206},
		{"suffix", []string{"Range", "bytes=-10000"}, 206},
		{"closed range", []string{"Range", "bytes=10-19"}, 206},
		{"multiple ranges", []string{"Range", "bytes=0-0,5-9,100-"}, 206},
		{"ranges larger than the file together", []string{"Range", "bytes=1-,2-"}, 200},
		{"if-range stale", []string{"Range", "bytes=1-", "If-Range", `"old"`}, 200},
		{"if-range current", []string{"Range", "bytes=1-", "If-Range", `"abc"`}, 206},
		{"if-none-match current", []string{"If-None-Match", `"abc"`}, 304},
		{"if-match stale", []string{"If-Match", `"old"`}, 412},
		{"unsatisfiable", []string{"Range", "bytes=20000-"}, 416},
		{"malformed range", []string{"Range", "bytes=x-y"}, 416},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/d/x/files/y", nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				r.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			plan := planBlob(r, mod, int64(len(data)), etag)
			rec := httptest.NewRecorder()
			m := &meteredReaderAt{ra: bytes.NewReader(data), max: plan.bytes}
			serveBlob(rec, r, "y.bin", mod, m, int64(len(data)), etag)
			if plan.status != tc.status || rec.Code != tc.status {
				t.Fatalf("plan %d, served %d, want %d", plan.status, rec.Code, tc.status)
			}
			if body := int64(rec.Body.Len()); (tc.status == 200 || tc.status == 206) && body != plan.bytes {
				t.Fatalf("charged %d bytes, served %d", plan.bytes, body)
			}
			if m.read.Load() > plan.bytes {
				t.Fatalf("read %d bytes of the file, charged %d", m.read.Load(), plan.bytes)
			}
		})
	}
}

// TestBrokenZipStreamGivesBackTheFilesItNeverSent: a client that leaves a
// zip download early is charged only for what was read of each file.
func TestBrokenZipStreamGivesBackTheFilesItNeverSent(t *testing.T) {
	f := newFixture(t)
	files := map[string][]byte{}
	for _, p := range []string{"a.mov", "b.mov", "c.mov", "d.mov"} {
		files[p] = bytes.Repeat([]byte(p[:1]), 16<<20)
	}
	u, _ := f.linkFixture(files, map[string]any{"max_downloads": 1})
	resp, err := http.Get(f.srv.URL + u + "/zip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	total := func() int64 {
		f.store.mu.Lock()
		defer f.store.mu.Unlock()
		var n int64
		for _, b := range f.store.served {
			n += b
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for total() >= 4*16<<20 {
		if time.Now().After(deadline) {
			t.Fatal("a zip left after 1 MiB is still charged for every file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The one download the link allows is not used up by the broken zip.
	if resp, page := f.do("GET", u, nil); resp.StatusCode != 200 || !bytes.Contains(page, []byte("d.mov")) {
		t.Fatalf("link page after a broken zip: %d %s", resp.StatusCode, page)
	}
}
