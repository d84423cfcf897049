package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/web"
)

// TestCloudConnectOnTheRealApp drives /api/v1/connections of a wired App
// against the iconik emulator on both databases; every answer is checked
// against the served OpenAPI document by the harness.
func TestCloudConnectOnTheRealApp(t *testing.T) {
	onEveryDatabase(t, func(t *testing.T, h *harness) {
		emu := emulatortest.Start(t, emulator.Options{})
		cred := emu.Cred("admin")
		creds := map[string]string{"base_url": emu.URL, "app_id": cred.AppID, "token": cred.Token}

		var v struct {
			Verification web.Verification `json:"verification"`
		}
		resp, body := h.req("POST", "/api/v1/connections/verify", creds, h.admin()...)
		h.mustJSON(resp, body, 200, &v)
		storage := ""
		for _, s := range v.Verification.Storages {
			if s.Name == "s3" {
				storage = s.ID
			}
		}
		if !v.Verification.OK || storage == "" {
			t.Fatalf("verification %+v", v.Verification)
		}

		in := map[string]string{"name": "Tenant", "storage_id": storage}
		for k, x := range creds {
			in[k] = x
		}
		var c struct {
			Connection web.Connection `json:"connection"`
		}
		resp, body = h.req("POST", "/api/v1/connections", in, h.admin()...)
		h.mustJSON(resp, body, 201, &c)
		id := c.Connection.ID

		p := h.portal(map[string]any{"name": "Dailies", "slug": "dailies", "connection_ids": []string{id}})
		resp, body = h.req("DELETE", "/api/v1/connections/"+id, nil, h.admin()...)
		h.mustJSON(resp, body, 409, nil)
		if !strings.Contains(string(body), "connection_in_use") {
			t.Fatalf("delete of a used connection: %s", body)
		}
		resp, body = h.req("PATCH", "/api/v1/portals/"+p.ID, map[string]any{"connection_ids": []string{}}, h.admin()...)
		h.mustJSON(resp, body, 200, nil)

		for _, s := range []struct {
			method, path string
			body         any
			status       int
		}{
			{"GET", "/api/v1/connections", nil, 200},
			{"GET", "/api/v1/connections/" + id, nil, 200},
			{"PATCH", "/api/v1/connections/" + id, map[string]string{"portal_root": "Inbox"}, 200},
			{"POST", "/api/v1/connections/" + id + "/verify", nil, 200},
			{"POST", "/api/v1/connections", in, 409},
			{"DELETE", "/api/v1/connections/" + id, nil, 204},
			{"GET", "/api/v1/connections/" + id, nil, 404},
		} {
			resp, body := h.req(s.method, s.path, s.body, h.admin()...)
			h.mustJSON(resp, body, s.status, nil)
			if strings.Contains(string(body), cred.Token) {
				t.Errorf("%s %s returned the token", s.method, s.path)
			}
		}

		st, err := os.Stat(filepath.Join(h.data, "secret.key"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("secret.key: %v %v", st, err)
		}
	})
}
