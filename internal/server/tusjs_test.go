package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/web"
)

// The browser's uploader (Uppy) is tus-js-client underneath: this script sends
// files the way @uppy/tus does, with 4 parallel partial uploads per file, the
// package token in a header and in the metadata of the final and of every
// partial (metadataForPartialUploads, which also names the file and its whole
// size so each partial is checked before it is stored), and relativePath
// "null" for a loose file.
const tusJSPackageScript = `
const fs = require('fs');
const crypto = require('crypto');
const tus = require('tus-js-client');
const [endpoint, token, manifest] = process.argv.slice(2);
const files = JSON.parse(fs.readFileSync(manifest));
function send(f) {
  return new Promise((resolve, reject) => {
    const data = fs.readFileSync(f.disk);
    const metadata = { package_token: token, filename: f.name, relativePath: f.relativePath, filetype: 'application/octet-stream' };
    if (f.declare) metadata.sha256 = crypto.createHash('sha256').update(data).digest('hex');
    const upload = new tus.Upload(data, {
      endpoint, parallelUploads: 4, chunkSize: 1024 * 1024,
      headers: { Authorization: 'Bearer ' + token },
      // tus-js-client sends metadataForPartialUploads as is on every partial;
      // it cannot fill in per-file values, so they are set per upload here,
      // as Uppy does through each file's meta.
      metadata, metadataForPartialUploads: {
        package_token: token, filename: f.name, relativePath: f.relativePath, file_size: String(data.length),
      },
      storeFingerprintForResuming: false, retryDelays: [0, 200, 1000],
      onError: reject, onSuccess: () => resolve(upload.url),
    });
    upload.start();
  });
}
Promise.all(files.map(send)).then(
  (urls) => console.log(JSON.stringify(urls)),
  (err) => { console.error('upload failed: ' + err); process.exit(1); });
`

func TestTusJSClientParallelUploadsIntoTheRunningServer(t *testing.T) {
	nodeModules := testbed.NodeModules(t)
	node := testbed.Binary(t, "node")
	h := newHarness(t)
	h.portal(map[string]any{"name": "Browser drop", "slug": "drop", "password": "letmein"})
	pkg := h.newPackage("drop")

	rng := rand.New(rand.NewPCG(7, 8))
	type file struct {
		Disk         string `json:"disk"`
		Name         string `json:"name"`
		RelativePath string `json:"relativePath"`
		Declare      bool   `json:"declare"`
		path         string // where ferry must record it
		data         []byte
	}
	dir := t.TempDir()
	files := []*file{
		{Name: "A001.mov", RelativePath: "Card 1/CLIPS/A001.mov", Declare: true, path: "Card 1/CLIPS/A001.mov", data: randBytes(rng, 6<<20+123)},
		{Name: "notes.txt", RelativePath: "null", Declare: false, path: "notes.txt", data: randBytes(rng, 5<<20+1)},
	}
	for i, f := range files {
		f.Disk = filepath.Join(dir, "f"+string(rune('0'+i)))
		if err := os.WriteFile(f.Disk, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	manifest, _ := json.Marshal(files)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "upload.js"), []byte(tusJSPackageScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "upload.js"), h.srv.URL+"/uploads/", pkg.UploadToken, filepath.Join(dir, "manifest.json"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tus-js-client: %v\n%s", err, out)
	}

	bearer := []string{"Authorization", "Bearer " + pkg.UploadToken}
	var got struct{ Package web.Package }
	resp, body := h.req("GET", "/p/drop/packages/"+pkg.Package.ID, nil, bearer...)
	h.mustJSON(resp, body, 200, &got)
	if len(got.Package.Files) != len(files) {
		t.Fatalf("package holds %d files, want %d: %s", len(got.Package.Files), len(files), body)
	}
	byPath := map[string]web.File{}
	for _, f := range got.Package.Files {
		byPath[f.Path] = f
	}
	for _, f := range files {
		rec, ok := byPath[f.path]
		if !ok {
			t.Fatalf("%s (relativePath %q) not recorded; files: %s", f.path, f.RelativePath, body)
		}
		if rec.State != "complete" || rec.Size != int64(len(f.data)) {
			t.Errorf("%s recorded as %+v, want complete with %d bytes", f.path, rec, len(f.data))
		}
		// A parallel upload's whole-file digest is not recomputed at ingest: a
		// declared one is recorded for delivery's sequential read to confirm,
		// and an undeclared one is left for delivery to compute.
		sum := sha256.Sum256(f.data)
		want := ""
		if f.Declare {
			want = hex.EncodeToString(sum[:])
		}
		if rec.SHA256 != want {
			t.Errorf("%s (declared %v) recorded digest %q, want %q", f.path, f.Declare, rec.SHA256, want)
		}
	}

	resp, body = h.req("POST", "/p/drop/packages/"+pkg.Package.ID+"/finalize", nil, bearer...)
	h.mustJSON(resp, body, 200, &got)
	var link struct{ Token, URL string }
	resp, body = h.req("POST", "/api/v1/packages/"+pkg.Package.ID+"/links", map[string]any{"expires_in": "1h"}, h.admin()...)
	h.mustJSON(resp, body, 201, &link)
	resp, body = h.req("GET", link.URL+"/zip", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("zip: %d %s", resp.StatusCode, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, f := range files {
		want[f.path] = f.data
	}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, want[zf.Name]) {
			t.Errorf("%s differs from what tus-js-client sent (err %v)", zf.Name, err)
		}
		delete(want, zf.Name)
	}
	if len(want) != 0 {
		t.Errorf("zip lacks %d files", len(want))
	}
}
