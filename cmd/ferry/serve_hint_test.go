package main

import (
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/server"
)

func TestServeSaysWhereToCreateTheFirstAdmin(t *testing.T) {
	cfg := config.Default("")
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	app, err := server.Open(t.Context(), cfg, server.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	cases := []struct{ publicURL, addr, want string }{
		{"", "127.0.0.1:8080", "no admin yet: open http://127.0.0.1:8080/ to create one"},
		{"", "[::]:8080", "no admin yet: open http://localhost:8080/ to create one"},
		{"", "0.0.0.0:9000", "no admin yet: open http://localhost:9000/ to create one"},
		{"https://ferry.example.com/", "[::]:8080", "no admin yet: open https://ferry.example.com/ to create one"},
	}
	for _, tc := range cases {
		c := cfg
		c.PublicURL = tc.publicURL
		if got := noAdminHint(t.Context(), app.DB, c, tc.addr); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.publicURL, tc.addr, got, tc.want)
		}
	}
	if _, err := app.Portal.CreateUser(t.Context(), "ops@example.com", "a long enough password", true); err != nil {
		t.Fatal(err)
	}
	if got := noAdminHint(t.Context(), app.DB, cfg, "127.0.0.1:8080"); got != "" {
		t.Errorf("with an admin: %q, want nothing", got)
	}
}
