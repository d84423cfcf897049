package iconik

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "secret-token-value"

// appSeq makes App-IDs unique per client even when a test runs twice (-count): the limiter
// registry is process-wide and would carry one run's spent tokens into the next.
var appSeq atomic.Int64

func uniqueApp(name string) string { return fmt.Sprintf("app-%s-%d", name, appSeq.Add(1)) }

// newTestClient returns a client for srv with fast retries and a unique App-ID.
func newTestClient(t *testing.T, srv *httptest.Server, tweak func(*Options)) *Client {
	t.Helper()
	o := Options{
		BaseURL: srv.URL, AppID: uniqueApp(t.Name()), Token: testToken,
		RateLimit: -1, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 4,
	}
	if tweak != nil {
		tweak(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// script answers the n-th request with the n-th status (the last one repeats) and records
// every request's method and path.
type script struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	body     string
	n        int
	calls    []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := min(s.n, len(s.statuses)-1)
	s.n++
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	status := s.statuses[i]
	s.mu.Unlock()
	if r.Header.Get("Auth-Token") != testToken || r.Header.Get("App-ID") == "" {
		http.Error(w, `{"errors": ["Token is invalid"]}`, http.StatusUnauthorized)
		return
	}
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status < 300 {
		fmt.Fprint(w, s.body)
	} else {
		fmt.Fprintf(w, `{"errors": ["status %d"]}`, status)
	}
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestRetryPolicy(t *testing.T) {
	cases := []struct {
		name         string
		statuses     []int
		call         func(context.Context, *Client) error
		wantAttempts int
		wantStatus   int // 0 = success
	}{
		{"GET retried on 5xx until success", []int{503, 500, 200}, getUser, 3, 0},
		{"PATCH retried on 5xx", []int{502, 200}, patchJob, 2, 0},
		{"POST create not retried on 5xx", []int{500, 201}, createAsset(false), 1, 500},
		{"POST create marked safe is retried on 5xx", []int{500, 201}, createAsset(true), 2, 0},
		{"POST create retried on 429", []int{429, 201}, createAsset(false), 2, 0},
		{"4xx not retried", []int{404, 200}, getUser, 1, 404},
		{"exhausted retries end with the last status", []int{503}, getUser, 4, 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{statuses: tc.statuses, body: `{"id": "x", "title": "t", "type": "TRANSFER", "status": "STARTED", "first_name": "a"}`}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := newTestClient(t, srv, nil)
			err := tc.call(context.Background(), c)
			if got := s.count(); got != tc.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tc.wantAttempts)
			}
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.wantStatus {
				t.Fatalf("want *Error with status %d, got %v", tc.wantStatus, err)
			}
			if e.Attempts != tc.wantAttempts {
				t.Errorf("Error.Attempts = %d, want %d", e.Attempts, tc.wantAttempts)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func getUser(ctx context.Context, c *Client) error { _, err := c.UserCurrent(ctx); return err }

func patchJob(ctx context.Context, c *Client) error {
	_, err := c.JobPatch(ctx, "j1", JobPatchParams{Type: "TRANSFER", Status: "FINISHED", Title: "t"})
	return err
}

func createAsset(safe bool) func(context.Context, *Client) error {
	return func(ctx context.Context, c *Client) error {
		_, err := c.AssetCreate(ctx, AssetCreateParams{Title: "a", ExternalID: "e", RetrySafe: safe})
		return err
	}
}

func TestExhaustedRetriesGiveAClearError(t *testing.T) {
	s := &script{statuses: []int{503}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newTestClient(t, srv, func(o *Options) { o.MaxAttempts = 3 })
	_, err := c.StorageGet(context.Background(), "st1")
	want := "iconik: GET /API/files/v1/storages/st1/: 503 Service Unavailable (after 3 attempts): status 503"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestRetryAfterIsHonouredOn429(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		w.Write([]byte(`{"objects": ["can_read_storages"]}`))
	}))
	defer srv.Close()
	// A backoff of an hour: only Retry-After can let the call finish within the deadline.
	c := newTestClient(t, srv, func(o *Options) { o.Backoff, o.MaxBackoff = time.Hour, time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roles, err := c.UserCurrentRoles(ctx)
	if err != nil || len(roles) != 1 {
		t.Fatalf("roles %v, err %v", roles, err)
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

func TestA429PausesEveryClientOfTheAppID(t *testing.T) {
	l := limiterFor(uniqueApp("pause"), -1)
	l.pause(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait during a pause = %v, want it to block until ctx ends", err)
	}
}

func TestRateLimiterIsSharedPerAppID(t *testing.T) {
	srv := httptest.NewServer(&script{statuses: []int{200}})
	defer srv.Close()
	mk := func(app string, rate float64) *Client {
		return newTestClient(t, srv, func(o *Options) { o.AppID, o.RateLimit = app, rate })
	}
	appA, appB := uniqueApp("A"), uniqueApp("B")
	a1, a2, b := mk(appA, 20), mk(appA, 10), mk(appB, 20)
	if a1.limiter != a2.limiter {
		t.Error("clients with the same App-ID have different limiters")
	}
	if a1.limiter == b.limiter {
		t.Error("clients with different App-IDs share a limiter")
	}
	if got := a1.limiter.lim.Limit(); got != 10 {
		t.Errorf("shared limit = %v, want the lowest configured (10)", got)
	}
	if got := b.limiter.lim.Limit(); got != 20 {
		t.Errorf("App-ID B limit = %v, want 20", got)
	}
	// Default when unset.
	d := newTestClient(t, srv, func(o *Options) { o.AppID, o.RateLimit = uniqueApp("default"), 0 })
	if got := d.limiter.lim.Limit(); got != DefaultRateLimit {
		t.Errorf("default limit = %v, want %v", got, DefaultRateLimit)
	}
}

func TestContextCancellation(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		arrived := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
		}))
		defer srv.Close()
		c := newTestClient(t, srv, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		_, err := c.UserCurrent(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("while waiting to retry", func(t *testing.T) {
		s := &script{statuses: []int{503}}
		srv := httptest.NewServer(s)
		defer srv.Close()
		c := newTestClient(t, srv, func(o *Options) { o.Backoff, o.MaxBackoff = time.Hour, time.Hour })
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for s.count() == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := c.UserCurrent(ctx)
		if !errors.Is(err, context.Canceled) || s.count() != 1 {
			t.Fatalf("err = %v after %d attempts, want context.Canceled after 1", err, s.count())
		}
	})
	t.Run("while rate limited", func(t *testing.T) {
		srv := httptest.NewServer(&script{statuses: []int{200}, body: `{"first_name": "a"}`})
		defer srv.Close()
		c := newTestClient(t, srv, func(o *Options) { o.RateLimit = 0.001 })
		if _, err := c.UserCurrent(context.Background()); err != nil { // spends the burst
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.UserCurrent(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestNetworkErrors(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			// Drop the connection without an answer.
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		w.Write([]byte(`{"id": "a1", "title": "t", "first_name": "x"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv, nil)
	if _, err := c.UserCurrent(context.Background()); err != nil || n.Load() != 2 {
		t.Fatalf("GET after a dropped connection: err %v after %d attempts, want success after 2", err, n.Load())
	}
	n.Store(0)
	_, err := c.AssetCreate(context.Background(), AssetCreateParams{Title: "t"})
	if err == nil || !strings.Contains(err.Error(), "not retried") || n.Load() != 1 {
		t.Fatalf("POST after a dropped connection: err %v after %d attempts, want a not-retried error after 1", err, n.Load())
	}
}

func TestErrorDecoding(t *testing.T) {
	cases := []struct {
		name, body string
		want       Error
	}{
		{"list", `{"errors": ["Permission denied"]}`, Error{Errors: []string{"Permission denied"}}},
		{"field map", `{"errors": {"title": "Missing data", "size": ["bad"]}}`, Error{FieldErrors: map[string]string{"title": "Missing data", "size": `["bad"]`}}},
		{"not json", `<html>bad gateway</html>`, Error{Body: "<html>bad gateway</html>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newError("GET", "/API/x/", 400, []byte(tc.body))
			if fmt.Sprint(e.Errors, e.FieldErrors, e.Body) != fmt.Sprint(tc.want.Errors, tc.want.FieldErrors, tc.want.Body) {
				t.Errorf("got %q %q %q", e.Errors, e.FieldErrors, e.Body)
			}
		})
	}
	e := newError("POST", "/API/assets/v1/assets/", 400, []byte(`{"errors": {"title": "Missing data"}}`))
	if got, want := e.Error(), "iconik: POST /API/assets/v1/assets/: 400 Bad Request: title: Missing data"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !IsBadRequest(fmt.Errorf("wrapped: %w", e)) || IsNotFound(e) {
		t.Error("status helpers do not see through wrapping")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []Options{
		{BaseURL: "app.iconik.io", AppID: "a", Token: testToken},
		{BaseURL: "ftp://x", AppID: "a", Token: testToken},
		{BaseURL: "https://x?q=1", AppID: "a", Token: testToken},
		{BaseURL: "https://x", AppID: "", Token: testToken},
		{BaseURL: "https://x", AppID: "a", Token: ""},
	}
	for _, o := range cases {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		} else if o.Token != "" && strings.Contains(err.Error(), o.Token) {
			t.Errorf("error leaks token: %v", err)
		}
	}
}

func TestEveryCallSendsTheTrailingSlash(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id": "i", "title": "t", "original_name": "o", "file_set_id": "fs", "type": "TRANSFER", "status": "STARTED"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv, nil)
	ctx := context.Background()
	_ = c.TokenCheck(ctx)
	_, _ = c.UserCurrent(ctx)
	_, _ = c.UserCurrentRoles(ctx)
	_, _ = c.StorageGet(ctx, "s")
	_, _ = c.StoragePermissions(ctx, "s")
	_, _ = Collect(c.StorageList(ctx, StorageListParams{}))
	_, _ = c.CollectionCreate(ctx, CollectionCreateParams{Title: "t"})
	_, _ = c.CollectionGet(ctx, "c")
	_, _ = Collect(c.CollectionList(ctx, CollectionListParams{IsRoot: Bool(true)}))
	_, _ = Collect(c.CollectionContentsList(ctx, "c", CollectionContentsListParams{}))
	_ = c.CollectionContentsAdd(ctx, "c", CollectionContentsAddParams{ObjectID: "a", ObjectType: "assets"})
	_, _ = c.AssetCreate(ctx, AssetCreateParams{Title: "t"})
	_, _ = c.AssetGet(ctx, "a")
	_ = c.AssetUploadsDelete(ctx, "a")
	_, _ = c.FormatCreate(ctx, "a", FormatCreateParams{})
	_, _ = c.FileSetCreate(ctx, "a", FileSetCreateParams{FormatID: "f", Name: "n"})
	_, _ = c.FileCreate(ctx, "a", FileCreateParams{OriginalName: "o"})
	_, _ = c.FileGet(ctx, "a", "f", FileGetParams{GenerateSignedPostURL: true})
	_, _ = c.FilePatch(ctx, "a", "f", FilePatchParams{Status: "CLOSED"})
	_, _ = c.S3PartURLs(ctx, "a", "f", S3PartURLsParams{UploadID: "u", PartsNum: 2})
	_, _ = c.S3MultipartURLs(ctx, "a", "f", S3MultipartURLsParams{UploadID: "u"})
	_ = c.MultipartCleanup(ctx, "a", "f", MultipartCleanupParams{UploadID: "u", AbortUpload: true})
	_, _ = c.B2LargeStart(ctx, "a", "f", B2LargeStartParams{})
	_ = c.B2LargeFinish(ctx, "a", "f", B2LargeFinishParams{UploadFileID: "u", SHA1List: []string{"x"}})
	_ = c.B2LargeCancel(ctx, "a", "f", B2LargeCancelParams{UploadFileID: "u"})
	_, _ = c.GCSComposeURL(ctx, "a", "f", GCSComposeURLParams{})
	_, _ = c.KeyframesCreate(ctx, "a", "f", KeyframesCreateParams{})
	_, _ = c.KeyframesBulkCreate(ctx, KeyframesBulkCreateParams{ObjectIDs: []string{"a", "b"}})
	_, _ = c.JobCreate(ctx, JobCreateParams{Type: "TRANSFER", Status: "STARTED", Title: "t"})
	_, _ = c.JobPatch(ctx, "j", JobPatchParams{Status: "FINISHED"})
	_, _ = c.MetadataFieldGet(ctx, "description")
	_, _ = c.MetadataViewList(ctx)
	_, _ = c.MetadataValuesPut(ctx, "a", "v", MetadataValuesPutParams{StringValues: map[string]string{"description": "d"}})
	_ = c.MetadataValuesBatchPut(ctx, "v", MetadataValuesBatchPutParams{ObjectIDs: []string{"a", "b"}, StringValues: map[string]string{"description": "d"}})
	_, _ = Collect(c.Search(ctx, SearchParams{Query: "x"}))
	mu.Lock()
	defer mu.Unlock()
	if len(paths) < 30 {
		t.Fatalf("only %d calls reached the server", len(paths))
	}
	for _, p := range paths {
		if !strings.HasSuffix(p, "/") || !strings.Contains(p, " /API/") {
			t.Errorf("%s: want an /API/ path with a trailing slash", p)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"-3", 0},
		{"soon", 0},
		{"99999", time.Minute}, // capped
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, tc := range cases {
		if got := retryAfter(tc.in, time.Minute); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	future := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	if got := retryAfter(future, time.Minute); got <= 0 || got > 31*time.Second {
		t.Errorf("retryAfter(HTTP date 30s ahead) = %v", got)
	}
}
