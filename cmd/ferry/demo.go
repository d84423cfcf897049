package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/secret"
	"github.com/ferryhq/ferry/internal/server"
)

// demoInfo is what `ferry serve --demo` prints and keeps in <data>/demo.json:
// every credential of the demo, so a newcomer can sign in, upload and look
// into the emulated iconik. They are demo credentials, printed on purpose.
type demoInfo struct {
	FerryURL      string `json:"ferry_url"`
	AdminEmail    string `json:"admin_email"`
	AdminPassword string `json:"admin_password"`
	APIToken      string `json:"api_token"`
	PortalURL     string `json:"portal_url"`
	IconikURL     string `json:"iconik_url"`
	IconikAddr    string `json:"iconik_addr"`
	IconikAppID   string `json:"iconik_app_id"`
	IconikToken   string `json:"iconik_token"`
	ConnectionID  string `json:"connection_id"`
	PortalID      string `json:"portal_id"`
}

// runDemo runs the whole loop on one machine: the iconik emulator in-process
// on its own port (kept in demo.json so the saved connection stays valid
// across restarts) with its state under <data>/iconik-emulator (every answer
// it gives is on disk first, so a kill -9 of the demo loses no iconik object
// ferry recorded), a seeded admin, a connection to the emulator's S3 storage
// and a portal "demo" delivering to it.
func runDemo(ctx context.Context, out io.Writer, cfg config.Config, log *slog.Logger, opt server.Options) error {
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory %s: %w", dataDir, err)
	}
	infoPath := filepath.Join(dataDir, "demo.json")
	var info demoInfo
	seeded := false
	if b, err := os.ReadFile(infoPath); err == nil {
		if err := json.Unmarshal(b, &info); err != nil {
			return fmt.Errorf("reading %s: %w", infoPath, err)
		}
		seeded = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	addr := info.IconikAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for the iconik emulator on %s: %w", addr, err)
	}
	info.IconikAddr = ln.Addr().String()
	info.IconikURL = "http://" + info.IconikAddr
	emu, err := emulator.New(emulator.Options{DataDir: filepath.Join(dataDir, "iconik-emulator"), BaseURL: info.IconikURL, Logger: log.With("component", "iconik-emulator")})
	if err != nil {
		ln.Close()
		return err
	}
	defer emu.Close()
	hs := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	app, err := server.Open(ctx, cfg, opt)
	if err != nil {
		return err
	}
	defer app.Close()
	if !seeded {
		if err := seedDemo(ctx, app, emu, &info); err != nil {
			return fmt.Errorf("seeding the demo: %w", err)
		}
	}
	return app.Serve(ctx, func(bound string) {
		info.FerryURL = "http://" + bound
		info.PortalURL = info.FerryURL + "/p/demo"
		b, _ := json.MarshalIndent(info, "", "  ")
		if err := os.WriteFile(infoPath, append(b, '\n'), 0o600); err != nil {
			log.Error("writing demo.json", "err", err)
		}
		fmt.Fprintf(out, `ferry demo is running
  ferry:       %s  (sign in as %s / %s)
  API token:   %s
  portal:      %s  (delivers to the emulated iconik's S3 storage)
  outbox:      %s  (the emails ferry would have sent; --smtp-url sends them)
  iconik:      %s  (browse page; App-ID %s, Auth-Token %s)
  saved in:    %s
`, info.FerryURL, info.AdminEmail, info.AdminPassword, info.APIToken, info.PortalURL, info.FerryURL+"/admin/outbox", info.IconikURL, info.IconikAppID, info.IconikToken, infoPath)
	})
}

func seedDemo(ctx context.Context, app *server.App, emu *emulator.Server, info *demoInfo) error {
	var cred emulator.Credential
	for _, c := range emu.Credentials() {
		if c.Name == "admin" {
			cred = c
		}
	}
	if cred.Token == "" {
		return errors.New("the emulator has no admin credential")
	}
	info.IconikAppID, info.IconikToken = cred.AppID, cred.Token
	cl, err := iconik.New(iconik.Options{BaseURL: info.IconikURL, AppID: cred.AppID, Token: cred.Token})
	if err != nil {
		return err
	}
	var storageID string
	for st, err := range cl.StorageList(ctx, iconik.StorageListParams{Purpose: "FILES"}) {
		if err != nil {
			return fmt.Errorf("listing the emulator's storages: %w", err)
		}
		if st.Method == "S3" && storageID == "" {
			storageID = st.ID
		}
	}
	if storageID == "" {
		return errors.New("the emulator has no S3 storage")
	}
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	info.AdminEmail, info.AdminPassword = "admin@ferry.demo", base64.RawURLEncoding.EncodeToString(pw)
	u, err := app.Portal.CreateUser(ctx, info.AdminEmail, info.AdminPassword, true)
	if err != nil {
		return err
	}
	if info.APIToken, _, err = app.Portal.CreateAPIToken(ctx, u.ID, "demo", nil); err != nil {
		return err
	}
	c, err := app.Connect.Create(ctx, connect.Input{Name: "iconik emulator",
		Params: connect.Params{BaseURL: info.IconikURL, AppID: cred.AppID, Token: secret.New(cred.Token)}, StorageID: storageID})
	if err != nil {
		return fmt.Errorf("connecting to the emulator: %w", err)
	}
	info.ConnectionID = c.ID
	// The admin is the portal's recipient: with no SMTP server configured,
	// the first package fills the outbox (/admin/outbox) with what would
	// have been sent.
	p, err := app.Portal.CreatePortal(ctx, portal.PortalInput{Name: "Demo", Slug: "demo", Active: true, ConnectionIDs: []string{c.ID},
		Recipients:     []string{info.AdminEmail},
		WelcomeMessage: "This is ferry's demo portal: what you upload here is delivered into the emulated iconik."})
	if err != nil {
		return err
	}
	info.PortalID = p.ID
	return nil
}
