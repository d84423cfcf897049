package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config is everything `ferry serve` and `ferry admin` need to know.
type Config struct {
	// Addr is the host:port the HTTP server listens on.
	Addr string
	// DataDir holds the database file, uploaded bytes and server secrets.
	DataDir string
	// DatabaseURL selects the database: empty means SQLite inside DataDir;
	// postgres://... selects PostgreSQL.
	DatabaseURL string
	// PublicURL is the base URL people reach the server at, used in links the
	// server hands out; empty means "relative links only".
	PublicURL string
	// SecureCookies marks session cookies Secure (set it behind HTTPS).
	SecureCookies bool
	// TrustedProxies lists, comma-separated, the addresses and CIDR ranges
	// of the reverse proxies in front of ferry. Only a request whose direct
	// peer is in it has its X-Forwarded-For/-Proto/-Host and Forwarded
	// headers believed (for the client's address and the URLs ferry builds);
	// from anyone else they are removed. Empty: no peer is trusted.
	TrustedProxies string
	// SecretKey is the master key (32 bytes, hex or base64) that seals
	// secrets at rest and keys the server's MACs. Empty: a key file in
	// DataDir is used, created on first start. Environment only
	// (FERRY_SECRET_KEY): a flag would show it in the process list.
	SecretKey string
	// TLSCert and TLSKey, both set, make the server speak HTTPS (and HTTP/2)
	// itself instead of behind a TLS-terminating proxy.
	TLSCert, TLSKey string
	// ShutdownTimeout bounds a graceful shutdown before connections are cut.
	ShutdownTimeout time.Duration
	// CleanupInterval is how often unfinished uploads and expired packages are swept.
	CleanupInterval time.Duration
	// UnfinishedUploadAge is how long an upload may stay unfinished before the
	// sweeper deletes its bytes.
	UnfinishedUploadAge time.Duration
	// SessionTTL is how long a browser session lasts.
	SessionTTL time.Duration
	// LogLevel is one of debug, info, warn, error.
	LogLevel string
	// Demo runs the whole loop on this machine (`ferry serve` only): an
	// iconik emulator in-process, a seeded admin and a demo portal.
	Demo bool
	// DeliveryWorkers is how many files are delivered into iconik at once on
	// this machine; DeliveryPerPackage bounds one delivery's share of them.
	DeliveryWorkers, DeliveryPerPackage int
	// DeliveryIndexGrace is how long iconik may take to list an object whose
	// creation answer was lost before ferry creates it again.
	DeliveryIndexGrace time.Duration
	// MaxUploadSize is the largest upload (file or part) the server accepts,
	// advertised to tus clients as Tus-Max-Size. It is finite so that no sum
	// of sizes a sender can make comes near the int64 limit.
	MaxUploadSize ByteSize
	// SMTPURL is where email goes: smtp://user:pass@host:587?tls=starttls
	// (tls=starttls|implicit|none). Empty: emails are kept in the outbox
	// (/admin/outbox) instead. Its password is never logged or returned.
	SMTPURL string
	// MailFrom is the sender of ferry's emails.
	MailFrom string
	// DiskReserve is how much free space on the data directory's file system
	// uploads never take: the database (SQLite in DataDir) and the server's
	// records grow into it, so deliveries and finalizes still record when
	// uploads are refused for lack of space. A creation whose length does not
	// fit above it is refused with 507, and /readyz turns not ready below it.
	DiskReserve ByteSize
	// Replicas is how many ferry serve processes share this database. Each
	// limits its iconik calls per App-ID to iconik's rate divided by it, so
	// together they stay under what iconik allows one App-ID. 0 means 1.
	Replicas int
	// DeliveryLease is how long a replica's claim on a file it delivers
	// outlives the replica: after a crash another replica takes the file
	// over within about this long.
	DeliveryLease time.Duration
	// Store is where package bytes live: empty means local disk under
	// DataDir/uploads; s3://bucket/prefix?endpoint=...&region=... an
	// S3-compatible bucket (credentials from the usual AWS environment
	// variables or shared credentials file, never from the URL).
	Store string
}

// DefaultMaxUploadSize is 16 TiB: past any single media file, far from int64.
const DefaultMaxUploadSize ByteSize = 16 << 40

// DefaultDiskReserve is 1 GiB: years of package, file and delivery rows for
// SQLite (a row is well under a KiB), plus room for its journal, and small
// beside the disks media servers run on.
const DefaultDiskReserve ByteSize = 1 << 30

// ByteSize is a number of bytes, written as a whole number with an optional
// binary (KiB, MiB, GiB, TiB, PiB) or decimal (KB, MB, GB, TB, PB) unit.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15}, {"B", 1},
}

// ParseByteSize reads "16TiB", "500 GB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is not a size like 16TiB, 500GB or 1048576", s)
	}
	return ByteSize(n * mult), nil
}

// String writes the size in the largest binary unit that divides it.
func (b ByteSize) String() string {
	for i := 4; i >= 0; i-- {
		u := byteUnits[i]
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set and Type make *ByteSize a pflag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b *ByteSize) Type() string { return "size" }

// envPrefix prefixes every environment variable ferry reads.
const envPrefix = "FERRY_"

// Default returns a Config that runs out of the box. xdgDataHome is the value
// of $XDG_DATA_HOME (empty when unset): the data directory is
// $XDG_DATA_HOME/ferry when it is set, ./.data otherwise.
func Default(xdgDataHome string) Config {
	dataDir := ".data"
	if xdgDataHome != "" {
		dataDir = filepath.Join(xdgDataHome, "ferry")
	}
	return Config{
		Addr:                "127.0.0.1:8080",
		DataDir:             dataDir,
		ShutdownTimeout:     30 * time.Second,
		CleanupInterval:     time.Hour,
		UnfinishedUploadAge: 7 * 24 * time.Hour,
		SessionTTL:          7 * 24 * time.Hour,
		LogLevel:            "info",
		DeliveryWorkers:     8,
		DeliveryPerPackage:  4,
		DeliveryIndexGrace:  30 * time.Second,
		MaxUploadSize:       DefaultMaxUploadSize,
		MailFrom:            "ferry <ferry@localhost>",
		DiskReserve:         DefaultDiskReserve,
		Replicas:            1,
		DeliveryLease:       2 * time.Minute,
	}
}

// setting ties one field to its flag and its environment variable, so the two
// sources can never drift apart.
type setting struct {
	flag, usage string
	ptr         any
	envOnly     bool // secrets: never a flag (visible in ps)
}

// hiddenDefaults are flags whose value may hold a password: help never
// shows it as the flag's default (it would, when it came from the
// environment).
var hiddenDefaults = map[string]bool{"smtp-url": true}

func (c *Config) settings() []setting {
	return []setting{
		{"addr", "host:port to listen on", &c.Addr, false},
		{"data", "data directory (database, uploads, secrets)", &c.DataDir, false},
		{"database-url", "database URL (empty: SQLite in the data directory; postgres://... for PostgreSQL)", &c.DatabaseURL, false},
		{"public-url", "base URL people reach this server at (used in links)", &c.PublicURL, false},
		{"secure-cookies", "mark session cookies Secure (use behind HTTPS)", &c.SecureCookies, false},
		{"trusted-proxies", "comma-separated addresses or CIDR ranges of the reverse proxies in front of ferry (like 127.0.0.1,10.0.0.0/8): only requests from them have X-Forwarded-For/-Proto/-Host and Forwarded believed, for client addresses (password rate limits, logs) and the URLs ferry builds (tus Location); empty: trust no one", &c.TrustedProxies, false},
		{"secret-key", "master key sealing secrets at rest", &c.SecretKey, true},
		{"tls-cert", "PEM certificate file: serve HTTPS (with --tls-key)", &c.TLSCert, false},
		{"tls-key", "PEM private key file of --tls-cert", &c.TLSKey, false},
		{"shutdown-timeout", "how long a graceful shutdown waits for requests", &c.ShutdownTimeout, false},
		{"cleanup-interval", "how often unfinished uploads and expired packages are swept", &c.CleanupInterval, false},
		{"unfinished-upload-age", "age after which an unfinished upload is deleted", &c.UnfinishedUploadAge, false},
		{"session-ttl", "lifetime of a browser session", &c.SessionTTL, false},
		{"log-level", "debug, info, warn or error", &c.LogLevel, false},
		{"demo", "run the whole loop on this machine: an iconik emulator in-process, a seeded admin, a connection to its S3 storage and a portal /p/demo delivering to it (credentials printed and written to <data>/demo.json)", &c.Demo, false},
		{"delivery-workers", "files delivered into iconik at once on this machine", &c.DeliveryWorkers, false},
		{"delivery-per-package", "files of one delivery sent at once", &c.DeliveryPerPackage, false},
		{"delivery-index-grace", "how long iconik may take to list an object whose creation answer was lost, before ferry creates it again", &c.DeliveryIndexGrace, false},
		{"max-upload-size", "largest upload (file or part) accepted, advertised as Tus-Max-Size (16TiB, 500GB, bytes)", &c.MaxUploadSize, false},
		{"smtp-url", "SMTP server for email, smtp://user:pass@host:587?tls=starttls|implicit|none (empty: emails go to the outbox at /admin/outbox; prefer the environment variable, a flag shows in the process list)", &c.SMTPURL, false},
		{"mail-from", "sender of ferry's emails, like \"ferry <ferry@studio.example>\"", &c.MailFrom, false},
		{"delivery-lease", "how long a file being delivered stays claimed by a replica that stopped (crashed); another replica takes it over after that", &c.DeliveryLease, false},
		{"replicas", "how many ferry serve processes share the database: each takes that share of iconik's request rate per App-ID", &c.Replicas, false},
		{"store", "where package bytes live: empty for local disk in the data directory, or s3://bucket/prefix?endpoint=https://host&region=us-east-1 (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a shared credentials file, never in the URL)", &c.Store, false},
		{"disk-reserve", "free space on the data directory's disk that uploads never take, kept for the database; uploads that would go below it get 507 and /readyz turns not ready (1GiB, 500MB, bytes; 0 disables)", &c.DiskReserve, false},
	}
}

// EnvName is the environment variable that fills the setting behind flag.
func EnvName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ApplyEnv fills c from FERRY_* variables found through lookup (os.LookupEnv
// in production). A malformed value is an error naming the variable.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, s := range c.settings() {
		name := EnvName(s.flag)
		v, ok := lookup(name)
		if !ok {
			continue
		}
		if err := set(s.ptr, v); err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
	return nil
}

func set(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 90s or 2h", v)
		}
		*p = d
	case *ByteSize:
		return p.Set(v)
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

// BindFlags registers every setting on fs, using c's current values (defaults
// already overlaid with the environment) as the flag defaults, so a flag given
// on the command line wins over the environment, which wins over defaults.
// Pass names to bind only some settings (e.g. `ferry admin` needs no --addr);
// none binds all.
func (c *Config) BindFlags(fs *pflag.FlagSet, names ...string) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, s := range c.settings() {
		if s.envOnly || (len(want) > 0 && !want[s.flag]) {
			continue
		}
		usage := s.usage + " [" + EnvName(s.flag) + "]"
		switch p := s.ptr.(type) {
		case *string:
			fs.StringVar(p, s.flag, *p, usage)
		case *bool:
			fs.BoolVar(p, s.flag, *p, usage)
		case *int:
			fs.IntVar(p, s.flag, *p, usage)
		case *time.Duration:
			fs.DurationVar(p, s.flag, *p, usage)
		case *ByteSize:
			fs.Var(p, s.flag, usage)
		}
		if hiddenDefaults[s.flag] {
			fs.Lookup(s.flag).DefValue = ""
		}
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return fmt.Errorf("config: --addr is empty")
	}
	if c.DataDir == "" {
		return fmt.Errorf("config: --data is empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: --log-level %q is not one of debug, info, warn, error", c.LogLevel)
	}
	for name, d := range map[string]time.Duration{
		"--shutdown-timeout": c.ShutdownTimeout, "--cleanup-interval": c.CleanupInterval,
		"--unfinished-upload-age": c.UnfinishedUploadAge, "--session-ttl": c.SessionTTL,
		"--delivery-index-grace": c.DeliveryIndexGrace,
	} {
		if d <= 0 {
			return fmt.Errorf("config: %s must be positive, got %s", name, d)
		}
	}
	for name, n := range map[string]int{"--delivery-workers": c.DeliveryWorkers, "--delivery-per-package": c.DeliveryPerPackage} {
		if n <= 0 {
			return fmt.Errorf("config: %s must be positive, got %d", name, n)
		}
	}
	if c.DeliveryLease < 0 {
		return fmt.Errorf("config: --delivery-lease must not be negative, got %s", c.DeliveryLease)
	}
	if c.Replicas < 0 {
		return fmt.Errorf("config: --replicas must not be negative, got %d", c.Replicas)
	}
	if c.DiskReserve < 0 {
		return fmt.Errorf("config: --disk-reserve must not be negative, got %d", c.DiskReserve)
	}
	if c.MaxUploadSize <= 0 {
		return fmt.Errorf("config: --max-upload-size must be positive, got %d", c.MaxUploadSize)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("config: --tls-cert and --tls-key go together; one of them is empty")
	}
	if c.SMTPURL != "" && !strings.HasPrefix(c.SMTPURL, "smtp://") && !strings.HasPrefix(c.SMTPURL, "smtps://") {
		// Not repeated: it may carry a password.
		return fmt.Errorf("config: --smtp-url must start with smtp:// (like smtp://user:pass@host:587?tls=starttls)")
	}
	if c.Store != "" {
		u, err := url.Parse(c.Store)
		switch {
		case err != nil || u.Scheme != "s3" || u.Host == "":
			return fmt.Errorf("config: --store must be empty (local disk) or like s3://bucket/prefix?endpoint=https://host&region=us-east-1")
		case u.User != nil:
			// Not repeated: it carries a secret.
			return fmt.Errorf("config: --store must not carry credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a shared credentials file) instead")
		}
	}
	if strings.TrimSpace(c.MailFrom) == "" {
		return fmt.Errorf("config: --mail-from is empty")
	}
	if _, err := ParsePrefixes(c.TrustedProxies); err != nil {
		return fmt.Errorf("config: --trusted-proxies: %w", err)
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return fmt.Errorf("config: --public-url %q must start with http:// or https://", c.PublicURL)
	}
	return nil
}

// ParsePrefixes reads a comma-separated list of addresses and CIDR ranges
// ("127.0.0.1, 10.0.0.0/8, ::1"); an address alone is a range of one.
// IPv4-mapped IPv6 forms are read as the IPv4 they carry, the way peers'
// addresses are compared.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			if a.Zone() != "" {
				return nil, fmt.Errorf("%q: an address with a zone cannot be trusted by range", f)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR range like 10.0.0.0/8", f)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Load builds the Config the way the commands do: defaults, then the
// environment through lookup. Flags are bound afterwards with BindFlags.
func Load(lookup func(string) (string, bool)) (Config, error) {
	xdg, _ := lookup("XDG_DATA_HOME")
	c := Default(xdg)
	err := c.ApplyEnv(lookup)
	return c, err
}
