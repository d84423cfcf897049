package emulator_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// gcsPart is one object of GET .../multipart_url/part/ on a GCS file.
type gcsPart struct{ key, url, deleteURL, downloadURL string }

func gcsPartURLs(t *testing.T, c *client, base string, n int) []gcsPart {
	t.Helper()
	r := c.must(200, c.do("GET", fmt.Sprintf("%s/multipart_url/part/?parts_num=%d&per_page=100", base, n), nil), "GCS part URLs")
	var out []gcsPart
	for i, o := range r.objects() {
		if o["number"] != float64(i+1) {
			t.Fatalf("part URL %d numbered %v", i+1, o["number"])
		}
		p := gcsPart{}
		p.key, _ = o["key"].(string)
		p.url, _ = o["url"].(string)
		p.deleteURL, _ = o["delete_url"].(string)
		p.downloadURL, _ = o["download_url"].(string)
		if p.key == "" || p.url == "" || p.deleteURL == "" || p.downloadURL == "" {
			t.Fatalf("part URL %d lacks a field: %v", i+1, o)
		}
		out = append(out, p)
	}
	if len(out) != n {
		t.Fatalf("%d part URLs, want %d", len(out), n)
	}
	return out
}

// putGCSParts uploads chunks[i] as part i+1, last part first: a part's place comes from the
// compose, never from when it arrived.
func putGCSParts(t *testing.T, parts []gcsPart, chunks [][]byte, skip ...int) {
	t.Helper()
	for i := len(chunks) - 1; i >= 0; i-- {
		if containsInt(skip, i+1) {
			continue
		}
		if resp, body := send(t, "PUT", parts[i].url, chunks[i], nil); resp.StatusCode != 200 {
			t.Fatalf("put part %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func composeXML(keys ...string) []byte {
	var b strings.Builder
	b.WriteString("<ComposeRequest>")
	for _, k := range keys {
		fmt.Fprintf(&b, "<Component><Name>%s</Name></Component>", k)
	}
	b.WriteString("</ComposeRequest>")
	return []byte(b.String())
}

func split(data []byte, n int) [][]byte {
	var out [][]byte
	size := (len(data) + n - 1) / n
	for i := 0; i < len(data); i += size {
		out = append(out, data[i:min(i+size, len(data))])
	}
	return out
}

// assertPartsGone checks that no temporary part object is left behind.
func assertPartsGone(t *testing.T, e *emulatortest.Emulator, c *client, parts []gcsPart) {
	t.Helper()
	for i, p := range parts {
		if rc, _, err := e.OpenObject(c.storageID("gcs"), p.key); err == nil {
			rc.Close()
			t.Fatalf("temporary part %d (%s) still stored", i+1, p.key)
		}
	}
}

func TestGCSParallelUploadInThreeParts(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	data := bytes.Repeat([]byte("gcs composite "), 20_000)
	chunks := split(data, 3)

	t.Run("client composes with the compose URL", func(t *testing.T) {
		asset, f := c.newFile("gcs", "par", "composed.bin", len(data))
		base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id")
		parts := gcsPartURLs(t, c, base, 3)
		putGCSParts(t, parts, chunks)
		cu := c.must(200, c.do("POST", base+"/multipart/gcs/compose_url/", map[string]any{"parts_group": nil, "content_type": "application/octet-stream"}), "compose URL")
		if cu.str("key") != "ferry/par/composed.bin" || cu.str("compose_url") == "" || cu.str("url") == "" || cu.str("delete_url") == "" {
			t.Fatalf("compose URL answer: %s", cu.Raw)
		}
		resp, body := send(t, "PUT", cu.str("compose_url"), composeXML(parts[0].key, parts[1].key, parts[2].key), map[string]string{"Content-Type": "application/octet-stream"})
		if resp.StatusCode != 200 {
			t.Fatalf("compose: %d %s", resp.StatusCode, body)
		}
		for i, p := range parts {
			if resp, body := send(t, "DELETE", p.deleteURL, nil, nil); resp.StatusCode != 204 {
				t.Fatalf("delete part %d: %d %s", i+1, resp.StatusCode, body)
			}
		}
		checkObject(t, e, c, "gcs", "ferry/par/composed.bin", data)
		if resp, body := send(t, "GET", cu.str("url"), nil, nil); resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("download the composed object: %d, %d bytes", resp.StatusCode, len(body))
		}
		assertPartsGone(t, e, c, parts)
	})

	t.Run("iconik composes on complete", func(t *testing.T) {
		asset, f := c.newFile("gcs", "par", "completed.bin", len(data))
		base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id")
		parts := gcsPartURLs(t, c, base, 3)
		putGCSParts(t, parts, chunks)
		c.must(200, c.do("POST", base+"/multipart/", map[string]any{"parts_range": []string{"1-2", "3"}}), "complete")
		checkObject(t, e, c, "gcs", "ferry/par/completed.bin", data)
		assertPartsGone(t, e, c, parts)
	})

	t.Run("more parts than one compose takes, in groups", func(t *testing.T) {
		asset, f := c.newFile("gcs", "par", "grouped.bin", len(data))
		base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id")
		many := split(data, 40)
		parts := gcsPartURLs(t, c, base, len(many))
		putGCSParts(t, parts, many)
		g1 := c.must(200, c.do("POST", base+"/multipart/gcs/compose_url/", map[string]any{"parts_group": 1}), "group 1 compose URL")
		var keys []string
		for _, p := range parts[:32] {
			keys = append(keys, p.key)
		}
		if resp, body := send(t, "PUT", g1.str("compose_url"), composeXML(keys...), nil); resp.StatusCode != 200 {
			t.Fatalf("compose group 1: %d %s", resp.StatusCode, body)
		}
		c.must(200, c.do("POST", base+"/multipart/", map[string]any{"parts_range": []string{"33-40"}, "parts_group": 2}), "complete group 2")
		c.must(200, c.do("POST", base+"/multipart/", map[string]any{"parts_range": []string{}}), "complete from the groups")
		checkObject(t, e, c, "gcs", "ferry/par/grouped.bin", data)
		c.must(200, c.do("POST", base+"/multipart/cleanup/", map[string]any{"parts_number": len(many), "abort_upload": true}), "cleanup")
		assertPartsGone(t, e, c, parts)
		if rc, _, err := e.OpenObject(c.storageID("gcs"), g1.str("key")); err == nil {
			rc.Close()
			t.Fatalf("group object %s still stored after the cleanup", g1.str("key"))
		}
	})
}

func TestGCSParallelUploadRefusals(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	chunks := [][]byte{[]byte("first "), []byte("second "), []byte("third")}
	asset, f := c.newFile("gcs", "bad", "holes.bin", 18)
	base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id")
	parts := gcsPartURLs(t, c, base, 3)
	putGCSParts(t, parts, chunks, 2) // part 2 never arrives

	cases := []struct {
		name, body, want string
	}{
		{"parts out of order", `{"parts_range": ["2", "1", "3"]}`, "ascending order"},
		{"a gap in the parts", `{"parts_range": ["1", "3"]}`, "part 3 follows part 1"},
		{"a part listed twice", `{"parts_range": ["1-2", "2-3"]}`, "ascending order"},
		{"a part not uploaded", `{"parts_range": ["1-3"]}`, "part 2 has not been uploaded"},
		{"a range that is not one", `{"parts_range": ["3-1"]}`, "not a part number"},
		{"the file not from part 1", `{"parts_range": ["3"]}`, "from part 1"},
		{"a group listing another group's parts", `{"parts_range": ["1-3"], "parts_group": 2}`, "parts 33-64"},
		{"no group composed yet", `{"parts_range": []}`, "no parts group"},
		{"parts_range missing", `{"parts_group": 1}`, "Missing data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.raw("POST", base+"/multipart/", tc.body, nil)
			errs, _ := r.Body["errors"].(map[string]any)
			msg, _ := errs["parts_range"].(string)
			if r.Status != 400 || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %s, want 400 with errors.parts_range containing %q", r.Status, r.Raw, tc.want)
			}
		})
	}
	if rc, _, err := e.OpenObject(c.storageID("gcs"), "ferry/bad/holes.bin"); err == nil {
		rc.Close()
		t.Fatal("a refused complete left an object behind")
	}

	t.Run("compose naming a part not uploaded", func(t *testing.T) {
		cu := c.must(200, c.do("POST", base+"/multipart/gcs/compose_url/", map[string]any{}), "compose URL")
		resp, body := send(t, "PUT", cu.str("compose_url"), composeXML(parts[0].key, parts[1].key, parts[2].key), nil)
		if resp.StatusCode != 404 || !bytes.Contains(body, []byte("<Code>NoSuchKey</Code>")) {
			t.Fatalf("got %d %s, want 404 NoSuchKey", resp.StatusCode, body)
		}
	})
	t.Run("compose URL for a group 0", func(t *testing.T) {
		r := c.raw("POST", base+"/multipart/gcs/compose_url/", `{"parts_group": 0}`, nil)
		if errs, _ := r.Body["errors"].(map[string]any); r.Status != 400 || errs["parts_group"] == nil {
			t.Fatalf("got %d %s, want 400 errors.parts_group", r.Status, r.Raw)
		}
	})
	t.Run("GCS helpers on an S3 file", func(t *testing.T) {
		s3Asset, s3File := c.newFile("s3", "bad", "s3.bin", 1)
		s3Base := "/API/files/v1/assets/" + s3Asset + "/files/" + s3File.str("id")
		for _, path := range []string{"/multipart/gcs/compose_url/", "/multipart/"} {
			r := c.raw("POST", s3Base+path, `{"parts_range": ["1"]}`, nil)
			if errs, _ := r.Body["errors"].([]any); r.Status != 400 || len(errs) != 1 {
				t.Fatalf("%s on an S3 file: %d %s, want 400 {\"errors\": [...]}", path, r.Status, r.Raw)
			}
		}
	})
}

func TestGCSPartURLsExpire(t *testing.T) {
	// Signed URLs carry their lifetime in whole seconds.
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{URLTTL: time.Second}})
	c := newClient(t, e, "admin")
	asset, f := c.newFile("gcs", "late", "late.bin", 3)
	base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id")
	parts := gcsPartURLs(t, c, base, 1)
	cu := c.must(200, c.do("POST", base+"/multipart/gcs/compose_url/", map[string]any{}), "compose URL")
	time.Sleep(2100 * time.Millisecond)
	for name, req := range map[string]struct{ url, body string }{
		"part upload": {parts[0].url, "abc"},
		"compose":     {cu.str("compose_url"), string(composeXML(parts[0].key))},
	} {
		resp, body := send(t, "PUT", req.url, []byte(req.body), nil)
		if resp.StatusCode != 403 || !bytes.Contains(body, []byte("<Code>ExpiredToken</Code>")) {
			t.Fatalf("%s with an expired URL: %d %s, want 403 ExpiredToken", name, resp.StatusCode, body)
		}
	}
	fresh := gcsPartURLs(t, c, base, 1)
	if resp, body := send(t, "PUT", fresh[0].url, []byte("abc"), nil); resp.StatusCode != 200 {
		t.Fatalf("part upload with a fresh URL: %d %s", resp.StatusCode, body)
	}
}
