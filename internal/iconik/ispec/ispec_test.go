package ispec

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	sampleAsset = `{"analyze_status": "N/A", "archive_status": "NOT_ARCHIVED", "category": null,
 "created_by_user": "774ac51c-f6db-11e7-b11a-0a580a3c0323", "custom_keyframe": null, "custom_poster": null,
 "date_created": "2021-07-30T15:16:54.406403+00:00", "date_deleted": null,
 "date_imported": "2021-07-30T15:16:54.406392+00:00", "date_modified": "2021-07-30T15:16:54.406408+00:00",
 "deleted_by_user": null, "external_id": null, "id": "2c5bfe1a-f149-11eb-a843-0a580a3db916",
 "is_blocked": false, "is_online": false, "status": "ACTIVE", "title": "My New Asset", "type": "ASSET",
 "versions": [{"analyze_status": "N/A", "archive_status": "NOT_ARCHIVED",
   "created_by_user": "774ac51c-f6db-11e7-b11a-0a580a3c0323", "date_created": "2021-07-30T15:16:54.408949+00:00",
   "id": "2c5c5ae0-f149-11eb-a843-0a580a3db916", "is_online": false, "status": "ACTIVE", "transcribe_status": "N/A"}],
 "warning": null}`
	sampleFileSet = `{"asset_id": "7f89b2be-efbc-11eb-8275-0a580a3eb0c3", "base_dir": "Test_Content/MXF/AVCI_Card",
 "component_ids": ["cba805b8-efc3-11eb-b799-0a580a3d2133"], "date_deleted": null, "deleted_by_user": null,
 "format_id": "cbb91c18-efc3-11eb-b799-0a580a3d2133", "id": "9f444dd0-efcb-11eb-96ca-0a580a3d936d",
 "is_archive": false, "name": "0002EM.MXF", "original_storage_id": null, "status": "ACTIVE",
 "storage_id": "eafedefa-bffa-11e8-ac61-0a580a3c0e75", "version_id": "7f8a5d68-efbc-11eb-8275-0a580a3eb0c3"}`
	sampleFile = `{"asset_id": "2c5c5ae0-f149-11eb-a843-0a580a3db916", "checksum": "38f7f32d194b725bd0b1855a6e35d3d3",
 "date_created": "2021-07-28T18:10:42.366968+00:00", "date_modified": "2021-07-28T18:10:42.366971+00:00",
 "directory_path": "Test Content/MXF/AVCI_Card/CONTENTS/VIDEO",
 "file_date_created": "2021-07-28T18:10:42.366954+00:00", "file_date_modified": "2021-07-28T18:10:42.366965+00:00",
 "file_set_id": "9f444dd0-efcb-11eb-96ca-0a580a3d936d", "format_id": "cbb91c18-efc3-11eb-b799-0a580a3d2133",
 "id": "1f14fcd2-efcf-11eb-becb-0a580a3d6d10", "name": "0002EM.MXF", "original_name": "0002EM.MXF",
 "parent_id": null, "size": 264032992, "status": "CLOSED", "storage_id": "eafedefa-bffa-11e8-ac61-0a580a3c0e75",
 "type": "FILE", "user_id": null, "version_id": "7f8a5d68-efbc-11eb-8275-0a580a3eb0c3"}`
	sampleJob = `{"created_by": "256ebe90-c0c8-11ec-9fcd-0648baddf8b3", "date_created": "2022-08-16T16:29:23.432000+00:00",
 "error_message": null, "has_children": false, "id": "c1a3f0d2-1d6e-11ed-8a3b-0a580a3d936d", "message": null,
 "metadata": {"storage_id": "9de01b48-1d6e-11ed-8a3b-0a580a3d936d"}, "object_id": "2a91b690-1918-11ed-adef-8a11e7db04db",
 "object_type": "assets", "parent_id": null, "priority": 5, "progress": 100,
 "progress_processed": 1, "progress_total": 1, "status": "FINISHED", "title": "t", "type": "TRANSFER"}`
)

const base = "http://127.0.0.1:8080"

func newReq(t *testing.T, method, path, body string, auth bool) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, base+path, strings.NewReader(body))
	if auth {
		r.Header.Set("App-ID", "app")
		r.Header.Set("Auth-Token", "tok")
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func mustLoad(t *testing.T) *Spec {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRequests(t *testing.T) {
	s := mustLoad(t)
	cases := []struct {
		name, method, path, body string
		auth                     bool
		wantErr                  string // substring; "" = valid
	}{
		{"published asset create request passes", "POST", "/API/assets/v1/assets/",
			`{"is_online": true, "status": "ACTIVE", "title": "My New Asset", "type": "ASSET"}`, true, ""},
		{"path without trailing slash is routed", "POST", "/API/assets/v1/assets",
			`{"title": "x", "type": "ASSET"}`, true, ""},
		{"asset create missing title fails", "POST", "/API/assets/v1/assets/",
			`{"type": "ASSET"}`, true, "title"},
		{"asset create with bad type enum fails", "POST", "/API/assets/v1/assets/",
			`{"title": "x", "type": "MOVIE"}`, true, "/type"},
		{"missing auth headers fail", "GET", "/API/users/v1/users/current/", "", false, "App-ID"},
		{"job create with bad status fails", "POST", "/API/jobs/v1/jobs/",
			`{"type": "TRANSFER", "status": "RUNNING", "title": "t"}`, true, "/status"},
		{"job create passes", "POST", "/API/jobs/v1/jobs/",
			`{"type": "TRANSFER", "status": "STARTED", "title": "t", "object_type": "assets", "progress_total": 10}`, true, ""},
		{"null in a non-nullable field passes (CONTRACT rule)", "POST", "/API/assets/v1/collections/",
			`{"title": "c", "parent_id": null}`, true, ""},
		{"unknown path fails", "GET", "/API/assets/v1/nothing_here/", "", true, "path not declared"},
		{"unknown service fails", "GET", "/API/nope/v1/x/", "", true, "no spec for service"},
		{"undeclared method fails", "DELETE", "/API/users/v1/users/current/", "", true, "method not declared"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.ValidateRequest(newReq(t, c.method, c.path, c.body, c.auth), []byte(c.body))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got none", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("want error containing %q, got %v", c.wantErr, err)
			}
		})
	}
}

func TestResponses(t *testing.T) {
	s := mustLoad(t)
	cases := []struct {
		name, method, path string
		status             int
		body               string
		wantErr            string
	}{
		{"published asset sample passes", "POST", "/API/assets/v1/assets/", 201, sampleAsset, ""},
		{"published file set sample passes", "POST", "/API/files/v1/assets/7f89b2be-efbc-11eb-8275-0a580a3eb0c3/file_sets/", 201, sampleFileSet, ""},
		{"published file sample passes", "GET", "/API/files/v1/assets/2c5c5ae0-f149-11eb-a843-0a580a3db916/files/1f14fcd2-efcf-11eb-becb-0a580a3d6d10/", 200, sampleFile, ""},
		{"published job sample passes", "GET", "/API/jobs/v1/jobs/c1a3f0d2-1d6e-11ed-8a3b-0a580a3d936d/", 200, sampleJob, ""},
		{"asset with bad status enum fails", "POST", "/API/assets/v1/assets/", 201,
			strings.Replace(sampleAsset, `"status": "ACTIVE", "title"`, `"status": "GONE", "title"`, 1), "/status"},
		{"file set missing required name fails", "POST", "/API/files/v1/assets/7f89b2be-efbc-11eb-8275-0a580a3eb0c3/file_sets/", 201,
			strings.Replace(sampleFileSet, `"name": "0002EM.MXF",`, ``, 1), "name"},
		{"undeclared status fails", "POST", "/API/assets/v1/assets/", 200, sampleAsset, "status 200 not declared"},
		{"429 is not checked", "POST", "/API/assets/v1/assets/", 429, `{"errors": ["slow down"]}`, ""},
		{"503 is not checked", "POST", "/API/assets/v1/assets/", 503, `<html>`, ""},
		{"declared error without content passes", "POST", "/API/assets/v1/assets/", 400, `{"errors": {"title": "required"}}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Content-Type": []string{"application/json"}}
			err := s.ValidateResponse(newReq(t, c.method, c.path, "", true), c.status, h, []byte(c.body))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got none", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("want error containing %q, got %v", c.wantErr, err)
			}
		})
	}
}

// recorder captures Errorf calls so the transport's reporting can be asserted.
