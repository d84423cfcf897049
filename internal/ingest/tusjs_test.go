package ingest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testbed"
)

// The real browser/Node client: tus-js-client 4.3.1 with 4 parallel partial uploads.
const tusJSScript = `
const fs = require('fs');
const crypto = require('crypto');
const tus = require('tus-js-client');
const [endpoint, file, token] = process.argv.slice(2);
const data = fs.readFileSync(file);
const upload = new tus.Upload(data, {
  endpoint,
  parallelUploads: 4,
  headers: { Authorization: 'Bearer ' + token },
  metadata: {
    package_token: token, filename: 'clip.mov', relativePath: 'day1/clip.mov', filetype: 'video/quicktime',
    sha256: crypto.createHash('sha256').update(data).digest('hex'),
  },
  metadataForPartialUploads: { package_token: token },
  storeFingerprintForResuming: false,
  retryDelays: [],
  onError: (err) => { console.error('upload failed: ' + err); process.exit(1); },
  onSuccess: () => { console.log(JSON.stringify({ url: upload.url })); },
});
upload.start();
`

func TestTusJSClientParallelUploadsInteroperate(t *testing.T) {
	nodeModules := testbed.NodeModules(t)
	node := testbed.Binary(t, "node")
	rg := newRig(t)
	data := randBytes(t, 5<<20+17)
	dir := t.TempDir()
	file := filepath.Join(dir, "clip.mov")
	script := filepath.Join(dir, "upload.js")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(tusJSScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, rg.srv.URL+"/uploads/", file, testToken)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tus-js-client: %v\n%s", err, out)
	}
	cs := rg.gate.completions()
	if len(cs) != 1 {
		t.Fatalf("Complete called %d times, want once for the final\n%s", len(cs), out)
	}
	c := cs[0]
	if !c.U.IsFinal || len(c.U.PartialIDs) != 4 || c.U.Metadata["relativePath"] != "day1/clip.mov" || c.U.Metadata["sha256"] != sha(data) {
		t.Errorf("completion = %+v", c.U)
	}
	if !strings.Contains(string(out), c.U.ID) {
		t.Errorf("client reports %s, server completed %s", out, c.U.ID)
	}
	partials := 0
	for _, a := range rg.gate.admitted {
		if a.IsPartial {
			partials++
			if a.Metadata["package_token"] != testToken {
				t.Errorf("partial admitted without package_token metadata: %+v", a.Metadata)
			}
		}
	}
	if partials != 4 {
		t.Errorf("admitted %d partials, want 4", partials)
	}
	if !bytes.Equal(rg.readBack(c.U.ID), data) {
		t.Errorf("final read back differs from the file tus-js-client sent")
	}
}
