package deploy

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/testbed"
)

// root is the repository root, where Dockerfile and compose.yaml live.
const root = ".."

// knownEnv is every FERRY_* variable ferry reads.
func knownEnv() map[string]bool {
	known := map[string]bool{}
	for _, d := range config.Describe() {
		known[d.Env] = true
	}
	for _, e := range config.OtherEnv {
		known[e.Name] = true
	}
	return known
}

// dockerfile is the Dockerfile's instructions, continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += line
		if strings.TrimSpace(cur) != "" {
			out = append(out, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return out
}

// TestDockerfileBuildsAStaticNonRootImageWithAHealthcheck checks what can be
// checked without a Docker daemon: the image's go build command, run here
// as written, makes a static binary (no interpreter, no shared libraries:
// the base image has no libc), whose healthcheck subcommand exists; the
// image is multi-stage, runs as a non-root user, keeps its data on a volume
// and sets only variables ferry reads.
func TestDockerfileBuildsAStaticNonRootImageWithAHealthcheck(t *testing.T) {
	lines := dockerfile(t)
	var froms, build []string
	var user, volume, health string
	env := map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, l)
		case "RUN":
			if strings.Contains(l, "go build") {
				build = f[1:]
			}
		case "USER":
			user = f[1]
		case "VOLUME":
			volume = f[1]
		case "HEALTHCHECK":
			health = l
		case "ENV":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if len(froms) < 2 {
		t.Errorf("want a multi-stage build (a build stage and a runtime stage), got FROM lines %q", froms)
	}
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
		t.Errorf("the image must run as a non-root user, USER is %q", user)
	}
	if volume == "" || env["FERRY_DATA"] != volume {
		t.Errorf("the data directory must be the volume: VOLUME %q, FERRY_DATA %q", volume, env["FERRY_DATA"])
	}
	known := knownEnv()
	for k := range env {
		if strings.HasPrefix(k, "FERRY_") && !known[k] {
			t.Errorf("the Dockerfile sets %s, which ferry does not read (docs/config.md)", k)
		}
	}
	// The build stage's Go must be the one go.mod asks for.
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil {
		t.Errorf("go.mod has no go line")
	} else if !slices.Contains(lines, "ARG GO_VERSION="+string(goLine[1])) {
		t.Errorf("the Dockerfile's ARG GO_VERSION must be go.mod's Go version %s", goLine[1])
	}
	if !strings.Contains(health, `"/usr/local/bin/ferry", "healthcheck"`) {
		t.Errorf("HEALTHCHECK must run the binary's own healthcheck (the image has no curl): %q", health)
	}

	// Run the image's build command as written, into a temporary file.
	if len(build) == 0 {
		t.Fatal("no RUN ... go build line in the Dockerfile")
	}
	var envs, args []string
	for len(build) > 0 && strings.Contains(build[0], "=") && !strings.HasPrefix(build[0], "-") {
		envs, build = append(envs, build[0]), build[1:]
	}
	if !slices.Contains(envs, "CGO_ENABLED=0") {
		t.Errorf("the build must set CGO_ENABLED=0 for a static binary: %q", envs)
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	for i := 0; i < len(build); i++ {
		if build[i] == "-o" && i+1 < len(build) {
			args = append(args, "-o", bin)
			i++
			continue
		}
		args = append(args, build[i])
	}
	if args[0] != "go" || !slices.Contains(args, bin) {
		t.Fatalf("cannot read the build command %q", build)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), envs...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary asks for a dynamic loader (PT_INTERP): it would not start on the static base image")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q", libs)
	}
	if file, err := exec.LookPath("file"); err == nil {
		out, _ := exec.Command(file, bin).Output()
		if !bytes.Contains(out, []byte("statically linked")) {
			t.Errorf("file(1) does not call the binary static: %s", out)
		}
	}
	if out, err := exec.Command(bin, "healthcheck", "--help").CombinedOutput(); err != nil {
		t.Errorf("the built binary has no working healthcheck subcommand: %v\n%s", err, out)
	}
}

// TestDockerignoreKeepsDataAndHistoryOutOfTheBuild: the build context must
// never carry a data directory (a database, uploads, the secret key file).
func TestDockerignoreKeepsDataAndHistoryOutOfTheBuild(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{".git", ".data", "**/.data"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// TestComposeExampleRunsReplicasOnPostgresAndS3BehindAProxy parses
// compose.yaml (no Docker daemon here) and checks it has what the example
// promises and names only settings ferry has.
func TestComposeExampleRunsReplicasOnPostgresAndS3BehindAProxy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck any               `yaml:"healthcheck"`
		DependsOn   any               `yaml:"depends_on"`
	}
	var doc struct {
		Services map[string]service `yaml:"services"`
		Volumes  map[string]any     `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	replicas := 0
	known := knownEnv()
	secretKeys := map[string]bool{}
	for name, s := range doc.Services {
		if s.Build == nil {
			continue
		}
		replicas++
		for k, v := range s.Environment {
			if strings.HasPrefix(k, "FERRY_") && !known[k] {
				t.Errorf("service %s sets %s, which ferry does not read (docs/config.md)", name, k)
			}
			if k == "FERRY_SECRET_KEY" {
				secretKeys[v] = true
			}
		}
		if !strings.HasPrefix(s.Environment["FERRY_DATABASE_URL"], "postgres://") {
			t.Errorf("replica %s is not on PostgreSQL: FERRY_DATABASE_URL=%q", name, s.Environment["FERRY_DATABASE_URL"])
		}
		if !strings.HasPrefix(s.Environment["FERRY_STORE"], "s3://") {
			t.Errorf("replica %s does not keep packages on S3: FERRY_STORE=%q", name, s.Environment["FERRY_STORE"])
		}
		if s.Environment["FERRY_ADDR"] == "" || strings.HasPrefix(s.Environment["FERRY_ADDR"], "127.") {
			t.Errorf("replica %s must listen where the proxy reaches it, FERRY_ADDR=%q", name, s.Environment["FERRY_ADDR"])
		}
		if s.DependsOn == nil {
			t.Errorf("replica %s starts before its database", name)
		}
	}
	if replicas < 2 {
		t.Errorf("want at least two ferry replicas (services built from the Dockerfile), got %d", replicas)
	}
	if len(secretKeys) != 1 {
		t.Errorf("every replica must share one FERRY_SECRET_KEY, got %d different values", len(secretKeys))
	}
	images := map[string]string{}
	for name, s := range doc.Services {
		images[strings.Split(s.Image, ":")[0]] = name
	}
	for _, want := range []string{"postgres", "versity/versitygw", "caddy"} {
		if images[want] == "" {
			t.Errorf("compose.yaml has no %s service", want)
		}
	}
	caddy := doc.Services[images["caddy"]]
	if up := caddy.Environment["FERRY_UPSTREAMS"]; len(strings.Fields(up)) < 2 {
		t.Errorf("the proxy must balance over the replicas: FERRY_UPSTREAMS=%q", up)
	}
	mountsCaddyfile := false
	for _, v := range caddy.Volumes {
		if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./") {
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("the proxy mounts %s, which does not exist", src)
			}
			mountsCaddyfile = mountsCaddyfile || strings.HasSuffix(src, "Caddyfile")
		}
	}
	if !mountsCaddyfile {
		t.Errorf("the proxy does not mount deploy/caddy/Caddyfile: %q", caddy.Volumes)
	}
	// Every named volume a service uses is declared, and the state lives in them.
	for name, s := range doc.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := doc.Volumes[src]; !ok {
					t.Errorf("service %s uses volume %s, which compose.yaml does not declare", name, src)
				}
			}
		}
	}
	if doc.Services[images["postgres"]].Healthcheck == nil {
		t.Errorf("postgres needs a healthcheck: the replicas wait for it")
	}
}

// TestSystemdUnitVerifiesAndIsHardened runs systemd-analyze verify on the
// unit (its ExecStart pointed at an executable that exists here) and
// fails on any complaint, since verify exits 0 on unknown keys and bad
// values; then checks the hardening the unit promises.
func TestSystemdUnitVerifiesAndIsHardened(t *testing.T) {
	b, err := os.ReadFile("systemd/ferry.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/ferry", "PrivateTmp=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service", "DynamicUser=yes",
		"StateDirectory=ferry", "Environment=FERRY_DATA=/var/lib/ferry", "CapabilityBoundingSet=\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	known := knownEnv()
	for _, m := range regexp.MustCompile(`FERRY_[A-Z_]+`).FindAllString(unit, -1) {
		if !known[m] {
			t.Errorf("the unit names %s, which ferry does not read", m)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testbed.Missing(t, "systemd-analyze", "the systemd package")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ferry.service")
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/ferry serve") {
		t.Fatal("the unit's ExecStart is not /usr/local/bin/ferry serve")
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/ferry", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
