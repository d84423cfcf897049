package send_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/send/sendtest"
)

type acceptedKey struct{}

// TestUploadConnectionsOpenWhileThePackageIsCreated: on a long link each new
// connection costs a round trip before its first request, so the streams'
// connections are opened while the package call is on its way, not after it.
// The package call here is slow; every upload request must come on a
// connection accepted before it was answered.
func TestUploadConnectionsOpenWhileThePackageIsCreated(t *testing.T) {
	s, err := sendtest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.AddPortal("demo", "")
	var mu sync.Mutex
	var created time.Time // when the package call was answered
	var late []string     // upload requests on connections opened after that
	var uploads int
	warmed := make(chan struct{}, 16) // one per OPTIONS seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			warmed <- struct{}{}
		}
		if r.Method == http.MethodPost && r.URL.Path == "/p/demo/packages" {
			// A slow package call, as over a long link: it is answered once the
			// sender has opened its four upload connections, or after 10 s (then
			// it opened none ahead, and the uploads' connections come late).
			deadline := time.After(10 * time.Second)
		wait:
			for range 4 {
				select {
				case <-warmed:
				case <-deadline:
					break wait
				}
			}
			defer func() { mu.Lock(); created = time.Now(); mu.Unlock() }()
		}
		if strings.HasPrefix(r.URL.Path, "/uploads/") && r.Method != http.MethodOptions {
			at := r.Context().Value(acceptedKey{}).(time.Time)
			mu.Lock()
			uploads++
			if created.IsZero() || at.After(created) {
				late = append(late, r.Method+" "+r.URL.Path)
			}
			mu.Unlock()
		}
		s.Handler().ServeHTTP(w, r)
	})
	hs := httptest.NewUnstartedServer(h)
	hs.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(s.ConnContext(ctx, c), acceptedKey{}, time.Now())
	}
	hs.Start()
	t.Cleanup(hs.Close)
	srv := &sendtest.TestServer{Server: s, URL: hs.URL}

	dir := t.TempDir()
	want := map[string][]byte{}
	var paths []string
	for _, name := range []string{"a.mov", "b.mov", "c.mov", "d.mov"} {
		want[name] = writeFile(t, filepath.Join(dir, name), 256<<10)
		paths = append(paths, filepath.Join(dir, name))
	}
	res, err := send.Send(context.Background(), send.Options{Target: portal(t, srv), Paths: paths, Streams: 4, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	assertPackage(t, srv, res.PackageID, want)
	mu.Lock()
	defer mu.Unlock()
	if uploads < 8 {
		t.Fatalf("saw %d upload requests, want at least 8 (4 creations, 4 PATCHes)", uploads)
	}
	if len(late) > 0 {
		t.Errorf("%d of %d upload requests came on connections opened after the package call was answered: %v", len(late), uploads, late)
	}
}
