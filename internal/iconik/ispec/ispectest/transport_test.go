package ispectest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// sampleAsset is iconik's published asset response (CONTRACT.md section 7).
const sampleAsset = `{"analyze_status": "N/A", "archive_status": "NOT_ARCHIVED", "category": null,
 "created_by_user": "774ac51c-f6db-11e7-b11a-0a580a3c0323", "custom_keyframe": null, "custom_poster": null,
 "date_created": "2021-07-30T15:16:54.406403+00:00", "date_deleted": null,
 "date_imported": "2021-07-30T15:16:54.406392+00:00", "date_modified": "2021-07-30T15:16:54.406408+00:00",
 "deleted_by_user": null, "external_id": null, "id": "2c5bfe1a-f149-11eb-a843-0a580a3db916",
 "is_blocked": false, "is_online": false, "status": "ACTIVE", "title": "My New Asset", "type": "ASSET",
 "versions": [{"analyze_status": "N/A", "archive_status": "NOT_ARCHIVED",
   "created_by_user": "774ac51c-f6db-11e7-b11a-0a580a3c0323", "date_created": "2021-07-30T15:16:54.408949+00:00",
   "id": "2c5c5ae0-f149-11eb-a843-0a580a3db916", "is_online": false, "status": "ACTIVE", "transcribe_status": "N/A"}],
 "warning": null}`

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTransportReportsMismatchesAndRestoresBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/API/assets/v1/assets/":
			w.WriteHeader(201)
			w.Write([]byte(strings.Replace(sampleAsset, `"type": "ASSET"`, `"type": "BLOB"`, 1)))
		default: // data plane: not JSON, not checked
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte("bytes"))
		}
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	c := &http.Client{Transport: Transport(rec, nil)}

	req, _ := http.NewRequest("POST", srv.URL+"/API/assets/v1/assets/", strings.NewReader(`{"type":"ASSET"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("App-ID", "a")
	req.Header.Set("Auth-Token", "secret-token")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readAll(t, resp)
	if !strings.Contains(b, `"BLOB"`) {
		t.Errorf("response body not restored: %q", b)
	}
	if len(rec.errs) != 2 {
		t.Fatalf("want a request and a response mismatch, got %q", rec.errs)
	}
	if !strings.Contains(rec.errs[0], "POST /API/assets/v1/assets/") || !strings.Contains(rec.errs[0], "title") {
		t.Errorf("request mismatch lacks method/path/field: %s", rec.errs[0])
	}
	if !strings.Contains(rec.errs[1], "/type") {
		t.Errorf("response mismatch lacks field: %s", rec.errs[1])
	}
	for _, e := range rec.errs {
		if strings.Contains(e, "secret-token") {
			t.Errorf("mismatch leaks the token: %s", e)
		}
	}

	rec.errs = nil
	resp, err = c.Get(srv.URL + "/_storage/s3/bucket/key")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); b != "bytes" || len(rec.errs) != 0 {
		t.Errorf("data plane traffic should pass unchecked: body %q, errors %q", b, rec.errs)
	}
}
