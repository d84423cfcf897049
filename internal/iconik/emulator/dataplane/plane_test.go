package dataplane

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestProviderFailRateAnswers503InEachProvidersShape(t *testing.T) {
	f := newFixture(t, Options{ProviderFailRate: 1})
	cases := []struct {
		method string
		req    func(uf UploadFields) (string, string, map[string]string)
		check  func(body string) bool
	}{
		{MethodS3, func(uf UploadFields) (string, string, map[string]string) { return http.MethodPut, uf.UploadURL, nil },
			func(b string) bool {
				var e s3Err
				return xml.Unmarshal([]byte(b), &e) == nil && e.Code == "SlowDown"
			}},
		{MethodGCS, func(uf UploadFields) (string, string, map[string]string) {
			return http.MethodPost, uf.UploadURL, map[string]string{"x-goog-resumable": "start"}
		}, func(b string) bool {
			var e struct{ Error struct{ Code int } }
			return json.Unmarshal([]byte(b), &e) == nil && e.Error.Code == 503
		}},
		{MethodAzure, func(uf UploadFields) (string, string, map[string]string) {
			return http.MethodPut, uf.UploadURL, map[string]string{"x-ms-blob-type": "BlockBlob"}
		}, func(b string) bool { return len(b) > 0 && xmlContains(b, "ServerBusy") }},
		{MethodB2, func(uf UploadFields) (string, string, map[string]string) { return http.MethodPost, uf.UploadURL, nil },
			func(b string) bool {
				var e struct{ Code string }
				return json.Unmarshal([]byte(b), &e) == nil && e.Code == "service_unavailable"
			}},
	}
	for _, c := range cases {
		t.Run(c.method, func(t *testing.T) {
			st := f.storage(t, c.method)
			uf, err := f.p.UploadFields(st, "ferry/x.bin", 3)
			if err != nil {
				t.Fatal(err)
			}
			method, u, hdr := c.req(uf)
			status, _, body := do(t, method, u, []byte("abc"), hdr)
			if status != http.StatusServiceUnavailable || !c.check(body) {
				t.Fatalf("got %d %s, want 503 in %s's shape", status, body, c.method)
			}
			if _, _, err := f.p.Open(st, "ferry/x.bin"); err == nil {
				t.Fatal("a refused upload left an object behind")
			}
		})
	}
}

func xmlContains(b, code string) bool {
	var e struct{ Code string }
	i := 0
	for i < len(b) && b[i] != '<' {
		i++ // skip a BOM
	}
	return xml.Unmarshal([]byte(b[i:]), &e) == nil && e.Code == code
}

func TestKeysCannotEscapeTheStorageDirectory(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodS3)
	outside := filepath.Join(filepath.Dir(st.Dir), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o644)
	for _, key := range []string{"", "../secret.txt", "a/../../secret.txt", "/etc/passwd", "a//b", "a/./b", "a\\..\\b", ".ferry-dataplane/s3/x/upload.json", "a/\x00b"} {
		if _, _, err := f.p.Open(st, key); err == nil {
			t.Errorf("Open(%q) succeeded, want a refusal", key)
		}
		if _, err := f.p.UploadFields(st, key, 1); err == nil {
			t.Errorf("UploadFields(%q) succeeded, want a refusal", key)
		}
	}
}
