package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestPrecedenceDefaultsThenEnvironmentThenFlags(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want func(*Config) // edits the defaults into the expected Config
	}{
		{"defaults run out of the box", nil, nil, func(*Config) {}},
		{"xdg data home moves the data dir", map[string]string{"XDG_DATA_HOME": "/x"}, nil, func(c *Config) { c.DataDir = "/x/ferry" }},
		{"environment overrides defaults", map[string]string{"FERRY_ADDR": ":9", "FERRY_DATA": "/d", "FERRY_SESSION_TTL": "1h"}, nil,
			func(c *Config) { c.Addr, c.DataDir, c.SessionTTL = ":9", "/d", time.Hour }},
		{"flags override environment", map[string]string{"FERRY_ADDR": ":9", "FERRY_DATA": "/d"}, []string{"--addr", ":10", "--data=/f"},
			func(c *Config) { c.Addr, c.DataDir = ":10", "/f" }},
		{"delivery settings and demo from the environment",
			map[string]string{"FERRY_DELIVERY_WORKERS": "3", "FERRY_DELIVERY_PER_PACKAGE": "2", "FERRY_DELIVERY_INDEX_GRACE": "5s", "FERRY_DEMO": "true"}, nil,
			func(c *Config) {
				c.DeliveryWorkers, c.DeliveryPerPackage, c.DeliveryIndexGrace, c.Demo = 3, 2, 5*time.Second, true
			}},
		{"delivery flags override the environment",
			map[string]string{"FERRY_DELIVERY_WORKERS": "3", "FERRY_DEMO": "true"},
			[]string{"--delivery-workers=16", "--delivery-per-package", "1", "--delivery-index-grace=1m", "--demo=false"},
			func(c *Config) { c.DeliveryWorkers, c.DeliveryPerPackage, c.DeliveryIndexGrace = 16, 1, time.Minute }},
		{"the largest upload from the environment, then a flag", map[string]string{"FERRY_MAX_UPLOAD_SIZE": "500GB"}, nil,
			func(c *Config) { c.MaxUploadSize = 500e9 }},
		{"the largest upload from a flag", map[string]string{"FERRY_MAX_UPLOAD_SIZE": "500GB"}, []string{"--max-upload-size=2TiB"},
			func(c *Config) { c.MaxUploadSize = 2 << 40 }},
		{"the disk reserve from the environment", map[string]string{"FERRY_DISK_RESERVE": "5GB"}, nil,
			func(c *Config) { c.DiskReserve = 5e9 }},
		{"the disk reserve off from a flag", map[string]string{"FERRY_DISK_RESERVE": "5GB"}, []string{"--disk-reserve=0"},
			func(c *Config) { c.DiskReserve = 0 }},
		{"the package store from the environment", map[string]string{"FERRY_STORE": "s3://b/p?region=eu-west-1"}, nil,
			func(c *Config) { c.Store = "s3://b/p?region=eu-west-1" }},
		{"the package store from a flag", map[string]string{"FERRY_STORE": "s3://b/p"}, []string{"--store=s3://other?endpoint=http://127.0.0.1:9000"},
			func(c *Config) { c.Store = "s3://other?endpoint=http://127.0.0.1:9000" }},
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
			want := Default("")
			tc.want(&want)
			if c != want {
				t.Fatalf("got  %+v\nwant %+v", c, want)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("valid config refused: %v", err)
			}
		})
	}
}

func TestEverySettingIsAFlagNamingItsVariable(t *testing.T) {
	var c Config
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.BindFlags(fs)
	for _, name := range []string{"max-upload-size", "disk-reserve", "demo", "delivery-workers", "delivery-per-package", "delivery-index-grace", "addr", "smtp-url", "mail-from"} {
		f := fs.Lookup(name)
		if f == nil || !strings.Contains(f.Usage, "["+EnvName(name)+"]") {
			t.Errorf("flag --%s missing or its help does not name %s: %+v", name, EnvName(name), f)
		}
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
		{"delivery workers not a number", map[string]string{"FERRY_DELIVERY_WORKERS": "many"}, "FERRY_DELIVERY_WORKERS"},
		{"no delivery workers", map[string]string{"FERRY_DELIVERY_WORKERS": "0"}, "--delivery-workers"},
		{"negative per-package share", map[string]string{"FERRY_DELIVERY_PER_PACKAGE": "-1"}, "--delivery-per-package"},
		{"zero index grace", map[string]string{"FERRY_DELIVERY_INDEX_GRACE": "0s"}, "--delivery-index-grace"},
		{"certificate without key", map[string]string{"FERRY_TLS_CERT": "c.pem"}, "--tls-key"},
		{"largest upload not a size", map[string]string{"FERRY_MAX_UPLOAD_SIZE": "huge"}, "FERRY_MAX_UPLOAD_SIZE"},
		{"largest upload past int64", map[string]string{"FERRY_MAX_UPLOAD_SIZE": "9000000PiB"}, "FERRY_MAX_UPLOAD_SIZE"},
		{"no largest upload", map[string]string{"FERRY_MAX_UPLOAD_SIZE": "0"}, "--max-upload-size"},
		{"smtp url of another scheme", map[string]string{"FERRY_SMTP_URL": "http://u:s3cret@mail.example"}, "--smtp-url"},
		{"empty mail sender", map[string]string{"FERRY_MAIL_FROM": " "}, "--mail-from"},
		{"disk reserve not a size", map[string]string{"FERRY_DISK_RESERVE": "plenty"}, "FERRY_DISK_RESERVE"},
		{"store of an unknown kind", map[string]string{"FERRY_STORE": "ftp://host/dir"}, "--store"},
		{"store url with credentials", map[string]string{"FERRY_STORE": "s3://AKIA:s3cret@bucket/p"}, "--store"},
		{"trusted proxy by host name", map[string]string{"FERRY_TRUSTED_PROXIES": "127.0.0.1,proxy.internal"}, "--trusted-proxies"},
		{"trusted proxy range out of bounds", map[string]string{"FERRY_TRUSTED_PROXIES": "10.0.0.0/33"}, "--trusted-proxies"},
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
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %v repeats a password", err)
			}
		})
	}
}

func TestByteSizesReadAndPrintInUnits(t *testing.T) {
	for in, want := range map[string]ByteSize{"16TiB": 16 << 40, "500 GB": 500e9, "1048576": 1 << 20, "2kib": 2048, "7B": 7} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if s := DefaultMaxUploadSize.String(); s != "16TiB" {
		t.Errorf("the default prints as %q", s)
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

func TestSMTPURLFromTheEnvironmentIsNeverShownInHelp(t *testing.T) {
	c, err := Load(func(k string) (string, bool) {
		if k == "FERRY_SMTP_URL" {
			return "smtp://u:s3cret@mail.example:587", true
		}
		return "", false
	})
	if err != nil || c.SMTPURL != "smtp://u:s3cret@mail.example:587" {
		t.Fatalf("FERRY_SMTP_URL not read: %v", err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.BindFlags(fs)
	if help := fs.FlagUsages(); strings.Contains(help, "s3cret") {
		t.Fatalf("help shows the SMTP password:\n%s", help)
	}
	if err := fs.Parse(nil); err != nil || c.SMTPURL != "smtp://u:s3cret@mail.example:587" {
		t.Fatalf("the environment's value was lost: %q %v", c.SMTPURL, err)
	}
}

func TestTrustedProxiesReadAddressesAndRanges(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"127.0.0.1", []string{"127.0.0.1/32"}},
		{" 10.0.0.0/8 , ::1,fd00::/8", []string{"10.0.0.0/8", "::1/128", "fd00::/8"}},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}},                                           // the range, not the address
		{"::ffff:192.0.2.1,::ffff:10.0.0.0/104", []string{"192.0.2.1/32", "10.0.0.0/8"}}, // compared as IPv4, as peers are
		{",,", nil},
	}
	for _, tc := range cases {
		got, err := ParsePrefixes(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q read as %v, want %v", tc.in, s, tc.want)
		}
	}
}
