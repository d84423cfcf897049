package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestPrecedenceDefaultsThenEnvironmentThenFlags(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		wantAddr string
		wantData string
		wantTTL  time.Duration
	}{
		{"defaults run out of the box", nil, nil, "127.0.0.1:8080", ".data", 7 * 24 * time.Hour},
		{"xdg data home moves the data dir", map[string]string{"XDG_DATA_HOME": "/x"}, nil, "127.0.0.1:8080", "/x/ferry", 7 * 24 * time.Hour},
		{"environment overrides defaults", map[string]string{"FERRY_ADDR": ":9", "FERRY_DATA": "/d", "FERRY_SESSION_TTL": "1h"}, nil, ":9", "/d", time.Hour},
		{"flags override environment", map[string]string{"FERRY_ADDR": ":9", "FERRY_DATA": "/d"}, []string{"--addr", ":10", "--data=/f"}, ":10", "/f", 7 * 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			c.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if c.Addr != tc.wantAddr || c.DataDir != tc.wantData || c.SessionTTL != tc.wantTTL {
				t.Fatalf("got addr=%q data=%q ttl=%s, want %q %q %s", c.Addr, c.DataDir, c.SessionTTL, tc.wantAddr, tc.wantData, tc.wantTTL)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("valid config refused: %v", err)
			}
		})
	}
}

func TestMalformedSettingsAreRefusedWithTheirName(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad duration", map[string]string{"FERRY_SESSION_TTL": "soon"}, "FERRY_SESSION_TTL"},
		{"bad bool", map[string]string{"FERRY_SECURE_COOKIES": "maybe"}, "FERRY_SECURE_COOKIES"},
		{"bad log level", map[string]string{"FERRY_LOG_LEVEL": "loud"}, "--log-level"},
		{"negative interval", map[string]string{"FERRY_CLEANUP_INTERVAL": "-1s"}, "--cleanup-interval"},
		{"public url without scheme", map[string]string{"FERRY_PUBLIC_URL": "example.com"}, "--public-url"},
		{"certificate without key", map[string]string{"FERRY_TLS_CERT": "c.pem"}, "--tls-key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %s", err, tc.want)
			}
		})
	}
}

func TestSecretKeyComesOnlyFromTheEnvironment(t *testing.T) {
	c, err := Load(func(k string) (string, bool) {
		if k == "FERRY_SECRET_KEY" {
			return "k3y", true
		}
		return "", false
	})
	if err != nil || c.SecretKey != "k3y" {
		t.Fatalf("FERRY_SECRET_KEY not read: %q %v", c.SecretKey, err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.BindFlags(fs)
	if fs.Lookup("secret-key") != nil {
		t.Fatal("the secret key is offered as a flag, where ps would show it")
	}
}
