package web

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestWebBundleMatchesItsSources fails when a file under web/ (the sources,
// the lock file, the build script) or a built file under static/ differs
// from what scripts/web recorded when it last built the bundle: the
// committed bundle must be the build of the committed sources.
func TestWebBundleMatchesItsSources(t *testing.T) {
	root := filepath.Join("..", "..")
	f, err := os.Open(filepath.Join("static", "SOURCES.sha256"))
	if err != nil {
		t.Fatalf("no record of what the bundle was built from (run scripts/web): %v", err)
	}
	defer f.Close()
	recorded := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("malformed line in SOURCES.sha256: %q", sc.Text())
		}
		recorded[path] = sum
	}
	// Every source and built file now on disk must be in the record.
	var onDisk []string
	for _, dir := range []string{"web", filepath.Join("internal", "web", "static")} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if !d.IsDir() && d.Name() != "SOURCES.sha256" {
				rel, _ := filepath.Rel(root, p)
				onDisk = append(onDisk, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(onDisk)
	for _, p := range onDisk {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		switch want, ok := recorded[p]; {
		case !ok:
			t.Errorf("%s is not among what the bundle was built from: run scripts/web", p)
		case want != hex.EncodeToString(sum[:]):
			t.Errorf("%s changed since the bundle was built: run scripts/web and commit internal/web/static", p)
		}
		delete(recorded, p)
	}
	for p := range recorded {
		t.Errorf("%s was part of the build but is gone: run scripts/web", p)
	}
}

// The bundle is served from this origin, cacheable for good only under its
// content version, and the record of its sources is not served.
func TestStaticAssetsAreServedWithTheirTypes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		path, ctype, cache string
		status             int
	}{
		{"/static/portal.js?v=" + staticVersion, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", 200},
		{"/static/portal.css", "text/css; charset=utf-8", "no-cache", 200},
		{"/static/SOURCES.sha256", "", "", 404},
		{"/static/..%2fpages.go", "", "", 404},
		{"/static/nope.js", "", "", 404},
	} {
		resp, _ := f.do("GET", tc.path, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status == http.StatusOK && (resp.Header.Get("Content-Type") != tc.ctype || resp.Header.Get("Cache-Control") != tc.cache) {
			t.Errorf("%s: Content-Type %q, Cache-Control %q", tc.path, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
		}
	}
}
