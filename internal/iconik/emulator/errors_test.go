package emulator_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

func TestBadInputGetsIconikStatusAndErrorShape(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	coll := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "c"}), "collection")
	asset, file := c.newFile("s3", "d", "f.bin", 3)
	unknown := "00000000-0000-1000-8000-000000000000"
	files := "/API/files/v1/assets/" + asset + "/files/"

	cases := []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
		field                    string // validation error expected on this field; "" = list-shaped errors
		message                  string // list-shaped message expected
	}{
		{name: "malformed JSON", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": `, status: 400},
		{name: "data after the JSON value", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": "x"} {}`, status: 400},
		{name: "body not an object", method: "POST", path: "/API/assets/v1/assets/", body: `["x"]`, status: 400, field: "_schema"},
		{name: "asset without title", method: "POST", path: "/API/assets/v1/assets/", body: `{"type": "ASSET"}`, status: 400, field: "title"},
		{name: "asset with bad type enum", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": "x", "type": "MOVIE"}`, status: 400, field: "type"},
		{name: "asset title not a string", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": 5}`, status: 400, field: "title"},
		{name: "asset in unknown collection", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": "x", "collection_id": "` + unknown + `"}`, status: 400, field: "collection_id"},
		{name: "unknown fields are ignored", method: "POST", path: "/API/assets/v1/assets/", body: `{"title": "x", "no_such_field": {"a": 1}}`, status: 201},
		{name: "collection without title", method: "POST", path: "/API/assets/v1/collections/", body: `{}`, status: 400, field: "title"},
		{name: "collection with bad status", method: "POST", path: "/API/assets/v1/collections/", body: `{"title": "x", "status": "GONE"}`, status: 400, field: "status"},
		{name: "collection under unknown parent", method: "POST", path: "/API/assets/v1/collections/", body: `{"title": "x", "parent_id": "` + unknown + `"}`, status: 400, field: "parent_id"},
		{name: "contents add without object_type", method: "POST", path: "/API/assets/v1/collections/" + coll.str("id") + "/contents/", body: `{"object_id": "` + asset + `"}`, status: 400, field: "object_type"},
		{name: "contents add to unknown collection", method: "POST", path: "/API/assets/v1/collections/" + unknown + "/contents/", body: `{"object_id": "` + asset + `", "object_type": "assets"}`, status: 404, message: "Collection not found"},
		{name: "contents of unknown collection", method: "GET", path: "/API/assets/v1/collections/" + unknown + "/contents/", status: 404, message: "Collection does not exist"},
		{name: "unknown asset", method: "GET", path: "/API/assets/v1/assets/" + unknown + "/", status: 404, message: "Asset does not exist"},
		{name: "unknown storage", method: "GET", path: "/API/files/v1/storages/" + unknown + "/", status: 404, message: "Storage doesn't exist"},
		{name: "unknown job", method: "GET", path: "/API/jobs/v1/jobs/" + unknown + "/", status: 404, message: "Job does not exist"},
		{name: "unknown file", method: "GET", path: files + unknown + "/", status: 404, message: "File for this asset doesn't exist"},
		{name: "files of unknown asset", method: "GET", path: "/API/files/v1/assets/" + unknown + "/files/", status: 404, message: "Files for this asset don't exist"},
		{name: "file sets of unknown asset", method: "GET", path: "/API/files/v1/assets/" + unknown + "/file_sets/", status: 404, message: "FileSets for this asset don't exist"},
		{name: "formats of unknown asset", method: "GET", path: "/API/files/v1/assets/" + unknown + "/formats/", status: 404, message: "Formats for this asset don't exist"},
		{name: "unknown field", method: "GET", path: "/API/metadata/v1/fields/nope/", status: 404, message: "Metadata field doesn't exist"},
		{name: "file without directory_path", method: "POST", path: files, body: `{"original_name": "a", "type": "FILE"}`, status: 400, field: "directory_path"},
		{name: "file with bad type", method: "POST", path: files, body: `{"original_name": "a", "directory_path": "", "type": "PIPE"}`, status: 400, field: "type"},
		{name: "file size as numeric string is accepted", method: "POST", path: files, body: `{"original_name": "a", "directory_path": "", "type": "FILE", "size": "12"}`, status: 201},
		{name: "file size not a number", method: "POST", path: files, body: `{"original_name": "a", "directory_path": "", "type": "FILE", "size": "big"}`, status: 400, field: "size"},
		{name: "file escaping its storage", method: "POST", path: files, body: `{"original_name": "a", "directory_path": "../x", "type": "FILE"}`, status: 400, field: "directory_path"},
		{name: "file patch with bad status", method: "PATCH", path: files + file.str("id") + "/", body: `{"status": "DONE"}`, status: 400, field: "status"},
		{name: "job without title", method: "POST", path: "/API/jobs/v1/jobs/", body: `{"type": "TRANSFER", "status": "STARTED"}`, status: 400, field: "title"},
		{name: "job with bad status", method: "POST", path: "/API/jobs/v1/jobs/", body: `{"type": "TRANSFER", "status": "RUNNING", "title": "t"}`, status: 400, field: "status"},
		{name: "field with bad field_type", method: "POST", path: "/API/metadata/v1/fields/", body: `{"name": "n", "label": "N", "field_type": "blob"}`, status: 400, field: "field_type"},
		{name: "view with unknown field", method: "POST", path: "/API/metadata/v1/views/", body: `{"name": "v", "view_fields": [{"name": "nope"}]}`, status: 400, field: "view_fields"},
		{name: "search with bad doc type", method: "POST", path: "/API/search/v1/search/", body: `{"doc_types": ["files"]}`, status: 400, field: "doc_types"},
		{name: "part URLs without parts_num", method: "GET", path: files + file.str("id") + "/multipart_url/part/?upload_id=u", status: 400, field: "parts_num"},
		{name: "S3 part number out of range", method: "POST", path: files + file.str("id") + "/multipart_url/s3/part/", body: `{"upload_id": "u", "parts": [{"part_number": 10001}]}`, status: 400, field: "parts"},
		{name: "negative page", method: "GET", path: "/API/jobs/v1/jobs/?page=0", status: 400, field: "page"},
		{name: "missing token", method: "GET", path: "/API/users/v1/users/current/", header: http.Header{"Auth-Token": {""}}, status: 401, message: "Token is invalid"},
		{name: "wrong token", method: "GET", path: "/API/assets/v1/assets/" + asset + "/", header: http.Header{"Auth-Token": {"nope"}}, status: 401, message: "Token is invalid"},
		{name: "wrong app id", method: "GET", path: "/API/assets/v1/assets/" + asset + "/", header: http.Header{"App-Id": {unknown}}, status: 401, message: "Token is invalid"},
		{name: "path without trailing slash", method: "GET", path: "/API/assets/v1/assets/" + asset, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, e, "admin")
			r := c.raw(tc.method, tc.path, tc.body, tc.header)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if tc.status < 400 {
				return
			}
			switch errs := r.Body["errors"].(type) {
			case map[string]any:
				if tc.field == "" {
					t.Fatalf("got field errors %v, want a list", errs)
				}
				if _, ok := errs[tc.field]; !ok {
					t.Fatalf("errors %v lack field %q", errs, tc.field)
				}
			case []any:
				if tc.field != "" {
					t.Fatalf("got list errors %v, want field %q", errs, tc.field)
				}
				if tc.message != "" && (len(errs) != 1 || errs[0] != tc.message) {
					t.Fatalf("errors %v, want [%q]", errs, tc.message)
				}
			default:
				t.Fatalf("errors has shape %T: %s", errs, r.Raw)
			}
		})
	}
}

func TestRolesAreCheckedPerToken(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	admin := newClient(t, e, "admin")
	asset := admin.must(201, admin.do("POST", "/API/assets/v1/assets/", map[string]any{"title": "a"}), "asset").str("id")
	admin.must(201, admin.do("POST", "/API/metadata/v1/fields/", map[string]any{"name": "description", "label": "D", "field_type": "text"}), "field")
	view := admin.must(201, admin.do("POST", "/API/metadata/v1/views/", map[string]any{"name": "v", "view_fields": []any{map[string]any{"name": "description"}}}), "view").str("id")
	values := `{"metadata_values": {"description": {"field_values": [{"value": "x"}]}}}`

	cases := []struct {
		cred, method, path, body string
		status                   int
	}{
		{"readonly", "GET", "/API/assets/v1/assets/" + asset + "/", "", 200},
		{"readonly", "GET", "/API/files/v1/storages/", "", 200},
		{"readonly", "POST", "/API/assets/v1/assets/", `{"title": "x"}`, 403},
		{"readonly", "POST", "/API/assets/v1/collections/", `{"title": "x"}`, 403},
		{"readonly", "POST", "/API/jobs/v1/jobs/", `{"type": "TRANSFER", "status": "STARTED", "title": "t"}`, 403},
		{"readonly", "DELETE", "/API/assets/v1/assets/" + asset + "/", "", 403},
		{"power", "POST", "/API/assets/v1/collections/", `{"title": "x"}`, 201},
		{"power", "PUT", "/API/metadata/v1/assets/" + asset + "/views/" + view + "/", values, 403},
		{"admin", "PUT", "/API/metadata/v1/assets/" + asset + "/views/" + view + "/", values, 200},
		{"power", "GET", "/API/users/v1/users/current/", "", 200}, // needs no role
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s %s", tc.cred, tc.method, strings.SplitN(tc.path, "/", 6)[4]), func(t *testing.T) {
			c := newClient(t, e, tc.cred)
			r := c.raw(tc.method, tc.path, tc.body, nil)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if tc.status == 403 && !strings.Contains(string(r.Raw), "Permission denied") {
				t.Fatalf("403 body %s", r.Raw)
			}
		})
	}
}

func TestMissingRoleStatusIsConfigurable(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{Faults: emulator.Faults{MissingRoleStatus: 401}})
	c := newClient(t, e, "readonly")
	if r := c.raw("POST", "/API/assets/v1/assets/", `{"title": "x"}`, nil); r.Status != 401 {
		t.Fatalf("status %d, want the configured 401", r.Status)
	}
}

func TestPaginationEnvelope(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	root := c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": "root"}), "root").str("id")
	for i := range 25 {
		c.must(201, c.do("POST", "/API/assets/v1/collections/", map[string]any{"title": fmt.Sprintf("c%02d", i), "parent_id": root}), "child")
	}
	contents := "/API/assets/v1/collections/" + root + "/contents/"
	var seen []string
	next := contents + "?object_types=collections&per_page=10"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("next_url never ends")
		}
		if !strings.HasPrefix(next, "/API/") {
			t.Fatalf("next_url %q is not an /API/ path", next)
		}
		r := c.must(200, c.do("GET", next, nil), "page")
		if r.Body["total"] != float64(25) || r.Body["pages"] != float64(3) || r.Body["per_page"] != float64(10) {
			t.Fatalf("envelope %v/%v/%v", r.Body["total"], r.Body["pages"], r.Body["per_page"])
		}
		for _, o := range r.objects() {
			seen = append(seen, o["title"].(string))
		}
		next, _ = r.Body["next_url"].(string)
	}
	if len(seen) != 25 || seen[0] != "c00" || seen[24] != "c24" {
		t.Fatalf("walked %d items: %v", len(seen), seen)
	}
	capped := c.must(200, c.do("GET", contents+"?per_page=500", nil), "capped")
	if capped.Body["per_page"] != float64(100) {
		t.Fatalf("per_page %v, want capped at 100", capped.Body["per_page"])
	}
	// Collections, jobs and search declare 404 past the last page.
	for _, path := range []string{"/API/assets/v1/collections/?per_page=10&page=4", "/API/jobs/v1/jobs/?page=2"} {
		if r := c.raw("GET", path, "", nil); r.Status != 404 || !strings.Contains(string(r.Raw), "Requested page does not exist") {
			t.Fatalf("%s: %d %s", path, r.Status, r.Raw)
		}
	}
	if r := c.raw("POST", "/API/search/v1/search/?page=9", `{}`, nil); r.Status != 404 {
		t.Fatalf("search past the end: %d", r.Status)
	}

	// Cursor lists: per_page + last_id.
	asset := c.must(201, c.do("POST", "/API/assets/v1/assets/", map[string]any{"title": "a"}), "asset").str("id")
	for i := range 3 {
		c.must(201, c.do("POST", "/API/files/v1/assets/"+asset+"/files/", map[string]any{"original_name": fmt.Sprint(i), "directory_path": "", "type": "FILE"}), "file")
	}
	first := c.must(200, c.do("GET", "/API/files/v1/assets/"+asset+"/files/?per_page=2", nil), "files")
	nextURL, _ := first.Body["next_url"].(string)
	if len(first.objects()) != 2 || !strings.Contains(nextURL, "last_id=") {
		t.Fatalf("first cursor page: %s", first.Raw)
	}
	second := c.must(200, c.do("GET", nextURL, nil), "files page 2")
	if len(second.objects()) != 1 || second.objects()[0]["original_name"] != "2" || second.Body["next_url"] != nil {
		t.Fatalf("second cursor page: %s", second.Raw)
	}
}

func TestAuthHeadersAreCaseInsensitive(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	cred := e.Cred("admin")
	req, err := http.NewRequest("GET", e.URL+"/API/auth/v1/auth/token/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["app-id"] = []string{cred.AppID} // sent as written, not canonicalised
	req.Header["AUTH-TOKEN"] = []string{cred.Token}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d with lower/upper-case header names", resp.StatusCode)
	}
}

func TestUserStatusDecidesAuthentication(t *testing.T) {
	seed := &emulator.Seed{
		Users:  []emulator.SeedUser{{Email: "off@x.example", Type: "POWER", Status: "INACTIVE"}, {Email: "gone@x.example", Type: "POWER", Status: "DELETED"}},
		Tokens: []emulator.SeedToken{{Name: "off", User: "off@x.example", Roles: []string{"flow"}}, {Name: "gone", User: "gone@x.example", Roles: []string{"flow"}}},
	}
	e := emulatortest.Start(t, emulator.Options{Seed: seed})
	c := newClient(t, e, "off")
	if me := c.must(200, c.do("GET", "/API/users/v1/users/current/", nil), "inactive user"); me.str("status") != "INACTIVE" {
		t.Fatalf("status %q, want INACTIVE so the client can say why", me.str("status"))
	}
	if r := c.as("gone").raw("GET", "/API/users/v1/users/current/", "", nil); r.Status != 401 {
		t.Fatalf("deleted user: %d, want 401", r.Status)
	}
}
