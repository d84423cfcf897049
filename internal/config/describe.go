package config

import (
	"fmt"
	"time"
)

// Described is one setting as the documentation shows it (docs/config.md is
// generated from these, so the reference cannot drift from the flags).
type Described struct {
	Flag    string // flag name without dashes
	Env     string // FERRY_* variable
	Usage   string // the flag's help text, without the [FERRY_*] suffix
	Default string // the out-of-the-box value, "" when empty
	Type    string // string, bool, int, duration or size
	EnvOnly bool   // a secret: only the environment sets it
}

// Describe lists every setting with its out-of-the-box default, in the order
// `ferry serve --help` shows them. Defaults come from Default(""), never from
// the environment of whoever runs it, so generated docs are the same
// everywhere; the data directory's XDG rule is stated in its usage.
func Describe() []Described {
	c := Default("")
	var out []Described
	for _, s := range c.settings() {
		d := Described{Flag: s.flag, Env: EnvName(s.flag), Usage: s.usage, EnvOnly: s.envOnly}
		switch p := s.ptr.(type) {
		case *string:
			d.Type, d.Default = "string", *p
		case *bool:
			d.Type, d.Default = "bool", fmt.Sprint(*p)
		case *int:
			d.Type, d.Default = "int", fmt.Sprint(*p)
		case *time.Duration:
			d.Type, d.Default = "duration", p.String()
		case *ByteSize:
			d.Type, d.Default = "size", p.String()
		}
		if s.flag == "data" {
			d.Default += " ($XDG_DATA_HOME/ferry when XDG_DATA_HOME is set)"
		}
		out = append(out, d)
	}
	return out
}

// Env is an environment variable read outside the Config struct: by one
// command for itself (`ferry send`'s token), or by the process as a whole.
type Env struct {
	Name, ReadBy, Meaning string
}

// OtherEnv lists every environment variable ferry reads that is not a
// setting above. A test scans ferry's sources for os.Getenv/os.LookupEnv of
// a literal and fails when one is missing here, so docs/config.md stays
// complete when someone reads a new variable.
var OtherEnv = []Env{
	{"XDG_DATA_HOME", "serve, admin", "when set and --data/FERRY_DATA are not, the data directory is $XDG_DATA_HOME/ferry"},
	{"XDG_CACHE_HOME", "send", "where `ferry send` keeps its resume state and the record of finished sends (the user cache directory; ~/.cache when unset)"},
	{"FERRY_TOKEN", "send", "API token for `ferry send --token` (the environment keeps it out of the process list)"},
	{"FERRY_PASSWORD", "send", "the portal's upload password for `ferry send --password`"},
	// Read by the AWS SDK (not by name in ferry's code) for the S3 package
	// store, --store s3://...: credentials never go in the store URL.
	{"AWS_ACCESS_KEY_ID", "serve (--store s3://...)", "access key of the S3 package store"},
	{"AWS_SECRET_ACCESS_KEY", "serve (--store s3://...)", "secret key of the S3 package store (never logged)"},
	{"AWS_PROFILE", "serve (--store s3://...)", "profile of the shared credentials file to take the S3 store's credentials from"},
	{"AWS_SHARED_CREDENTIALS_FILE", "serve (--store s3://...)", "credentials file (default ~/.aws/credentials)"},
	{"FERRY_MIGRATE_TO", "admin migrate-db", "PostgreSQL URL of the target database for `ferry admin migrate-db --to` (keeps its password out of the process list)"},
	{"FERRY_CPUPROFILE", "every command", "write a CPU profile of the command to this file (for `go tool pprof`)"},
	{"FERRY_ICONIK_SPEC", "iconik-emulator", "directory of iconik's OpenAPI specs for `--check-spec`"},
}
