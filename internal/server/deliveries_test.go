package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/web"
)

// TestDeliveriesThroughTheAPI drives a portal delivery and a Send to Cloud
// through the real App's HTTP API (every answer checked against the served
// OpenAPI document), plus the status, retry and jobs UI routes.
func TestDeliveriesThroughTheAPI(t *testing.T) {
	h := newHarness(t)
	emu := emulatortest.Start(t, emulator.Options{})
	cred := emu.Cred("admin")
	connect := func(name, storageName string) string {
		var v struct {
			Verification web.Verification `json:"verification"`
		}
		creds := map[string]string{"base_url": emu.URL, "app_id": cred.AppID, "token": cred.Token}
		resp, body := h.req("POST", "/api/v1/connections/verify", creds, h.admin()...)
		h.mustJSON(resp, body, 200, &v)
		in := map[string]string{"name": name}
		for k, x := range creds {
			in[k] = x
		}
		for _, s := range v.Verification.Storages {
			if s.Name == storageName {
				in["storage_id"] = s.ID
			}
		}
		var c struct {
			Connection web.Connection `json:"connection"`
		}
		resp, body = h.req("POST", "/api/v1/connections", in, h.admin()...)
		h.mustJSON(resp, body, 201, &c)
		return c.Connection.ID
	}
	portalConn, sendConn := connect("Tenant S3", "s3"), connect("Tenant Azure", "azure")
	if err := h.app.startDelivery(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.stopDelivery)

	h.portal(map[string]any{"name": "Pipe", "slug": "pipe", "active": true, "connection_ids": []string{portalConn}})
	var c created
	resp, body := h.req("POST", "/p/pipe/packages", map[string]string{"name": "Shoot", "sender_email": "s@example.com"})
	h.mustJSON(resp, body, 201, &c)
	for _, p := range []string{"a/one.txt", "a/b/two.txt", "three.txt"} {
		h.upload(c.UploadToken, p, []byte("content of "+p))
	}
	// Send to Cloud refuses a package still uploading.
	resp, body = h.req("POST", "/api/v1/packages/"+c.Package.ID+"/deliveries", map[string]string{"connection_id": sendConn}, h.admin()...)
	h.mustJSON(resp, body, 409, nil)
	resp, body = h.req("POST", "/p/pipe/packages/"+c.Package.ID+"/finalize", nil, "Authorization", "Bearer "+c.UploadToken)
	h.mustJSON(resp, body, 200, nil)

	var list struct {
		Deliveries []web.Delivery `json:"deliveries"`
	}
	resp, body = h.req("GET", "/api/v1/packages/"+c.Package.ID+"/deliveries", nil, h.admin()...)
	h.mustJSON(resp, body, 200, &list)
	if len(list.Deliveries) != 1 || list.Deliveries[0].Origin != "portal" {
		t.Fatalf("deliveries %+v", list.Deliveries)
	}
	d := waitDelivered(t, h, list.Deliveries[0].ID)
	if len(d.Files) != 3 || d.BytesDone != d.Bytes || d.CollectionID == "" || d.Title != "Shoot" {
		t.Fatalf("portal delivery %+v", d)
	}
	for _, f := range d.Files {
		if f.AssetID == "" || f.IconikFileID == "" || f.JobID == "" || f.FileSetID == "" || f.FormatID == "" || f.SHA256 == "" {
			t.Fatalf("%s: ids missing: %+v", f.Path, f)
		}
	}

	// Send to Cloud to the second connection: into MASV/<package>.
	var sent struct {
		Delivery web.Delivery `json:"delivery"`
	}
	resp, body = h.req("POST", "/api/v1/packages/"+c.Package.ID+"/deliveries", map[string]string{"connection_id": sendConn}, h.admin()...)
	h.mustJSON(resp, body, 202, &sent)
	if sent.Delivery.Origin != "send_to_cloud" {
		t.Fatalf("send to cloud made %+v", sent.Delivery)
	}
	s := waitDelivered(t, h, sent.Delivery.ID)
	cl, err := iconik.New(iconik.Options{BaseURL: emu.URL, AppID: cred.AppID, Token: cred.Token, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	col, err := cl.CollectionGet(t.Context(), s.CollectionID)
	if err != nil {
		t.Fatal(err)
	}
	masv, err := cl.CollectionGet(t.Context(), col.ParentID)
	if err != nil {
		t.Fatal(err)
	}
	if col.Title != "Shoot" || masv.Title != "MASV" {
		t.Fatalf("send to cloud went to %q/%q, want MASV/Shoot", masv.Title, col.Title)
	}

	var retried struct {
		Retried int `json:"retried"`
	}
	resp, body = h.req("POST", "/api/v1/deliveries/"+d.ID+"/retry", nil, h.admin()...)
	h.mustJSON(resp, body, 202, &retried)
	if retried.Retried != 0 {
		t.Fatalf("retry of a delivered delivery retried %d files", retried.Retried)
	}
	for _, x := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/api/v1/deliveries/no-such-delivery", nil, 404},
		{"POST", "/api/v1/deliveries/no-such-delivery/retry", nil, 404},
		{"GET", "/api/v1/packages/no-such-package/deliveries", nil, 404},
		{"POST", "/api/v1/packages/" + c.Package.ID + "/deliveries", map[string]string{}, 400},
		{"POST", "/api/v1/packages/" + c.Package.ID + "/deliveries", map[string]string{"connection_id": "nope"}, 404},
	} {
		resp, body := h.req(x.method, x.path, x.body, h.admin()...)
		h.mustJSON(resp, body, x.status, nil)
	}

	// River UI for admins only.
	resp, body = h.req("GET", "/admin/jobs/", nil, h.admin()...)
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("River UI: %d %.200s", resp.StatusCode, body)
	}
	resp, _ = h.req("GET", "/admin/jobs/", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("River UI without credentials: %d", resp.StatusCode)
	}
	testJobsUIActionsFromASignedInAdmin(t, h)
}

// testJobsUIActionsFromASignedInAdmin: River UI's browser app sends its
// actions with fetch, a session cookie and no ferry CSRF token. Same-origin
// ones work; cross-site and foreign-origin ones and anonymous ones do not.
func testJobsUIActionsFromASignedInAdmin(t *testing.T, h *harness) {
	resp, body := h.req("POST", "/login", map[string]string{"email": "admin@example.com", "password": "correct horse battery"})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "ferry_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("login set no session cookie")
	}
	var jobs struct {
		Data []struct {
			ID    json.RawMessage `json:"id"`
			State string          `json:"state"`
		} `json:"data"`
	}
	resp, body = h.req("GET", "/admin/jobs/api/jobs?state=completed", nil, "Cookie", cookie)
	if resp.StatusCode != 200 || json.Unmarshal(body, &jobs) != nil || len(jobs.Data) == 0 {
		t.Fatalf("listing completed jobs through River UI: %d %.300s", resp.StatusCode, body)
	}
	retry := map[string]any{"ids": []json.RawMessage{jobs.Data[0].ID}}
	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		hdr          []string
		want         int
	}{
		{"cross-site retry", "POST", "/admin/jobs/api/jobs/retry", retry, []string{"Cookie", cookie, "Sec-Fetch-Site", "cross-site"}, 403},
		{"retry from a foreign origin", "POST", "/admin/jobs/api/jobs/retry", retry, []string{"Cookie", cookie, "Origin", "https://evil.example"}, 403},
		{"anonymous retry", "POST", "/admin/jobs/api/jobs/retry", retry, []string{"Sec-Fetch-Site", "same-origin"}, 401},
		{"same-origin retry", "POST", "/admin/jobs/api/jobs/retry", retry, []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}, 200},
		{"same-origin queue pause", "PUT", "/admin/jobs/api/queues/delivery/pause", nil, []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}, 200},
		{"cross-site queue resume", "PUT", "/admin/jobs/api/queues/delivery/resume", nil, []string{"Cookie", cookie, "Sec-Fetch-Site", "cross-site"}, 403},
		{"same-origin queue resume", "PUT", "/admin/jobs/api/queues/delivery/resume", nil, []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}, 200},
		// The exemption from the CSRF token is River UI's alone.
		{"ferry API still wants the token", "POST", "/api/v1/deliveries/no-such-delivery/retry", nil, []string{"Cookie", cookie, "Sec-Fetch-Site", "same-origin"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.req(tc.method, tc.path, tc.body, tc.hdr...)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %d, want %d: %.300s", tc.method, tc.path, resp.StatusCode, tc.want, body)
			}
		})
	}
}

func waitDelivered(t *testing.T, h *harness, id string) web.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		var d struct {
			Delivery web.Delivery `json:"delivery"`
		}
		resp, body := h.req("GET", "/api/v1/deliveries/"+id, nil, h.admin()...)
		h.mustJSON(resp, body, 200, &d)
		switch d.Delivery.State {
		case "delivered":
			return d.Delivery
		case "failed", "partially failed":
			t.Fatalf("delivery %s: %+v", d.Delivery.State, d.Delivery.Errors)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("delivery still %s", d.Delivery.State)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
