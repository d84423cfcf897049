package iconik

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultBaseURL is iconik's main host.
const DefaultBaseURL = "https://app.iconik.io"

// DefaultRateLimit is the request rate per App-ID a client limits itself to: a production
// migrator's 45 req/s, under the ~50 req/s third parties report (CONTRACT.md §1 Rate limits).
const DefaultRateLimit = 45.0

// Options configure a Client. The zero value of every field but AppID and Token has a default.
type Options struct {
	BaseURL string // default DefaultBaseURL; "/API/..." is appended
	AppID   string // App-ID header
	Token   string // Auth-Token header; never logged or returned in errors

	// RateLimit is requests per second for this App-ID, shared by every Client of the process
	// that uses the same App-ID (the lowest configured rate wins, since the limit belongs to
	// the App-ID at iconik, not to a client). 0 = DefaultRateLimit; negative = unlimited.
	RateLimit float64
	// MaxAttempts bounds tries per call, including the first (default 6).
	MaxAttempts int
	// Backoff is the first retry delay, doubled per attempt with jitter up to MaxBackoff
	// (defaults 1s and 30s). A 429 with Retry-After waits exactly that long instead.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a server's Retry-After (default 5m).
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 2m); the call's ctx bounds the whole call.
	AttemptTimeout time.Duration
	// Transport sends the requests (default http.DefaultTransport); tests insert
	// ispectest.Transport here.
	Transport http.RoundTripper
	// OnRateLimitWait, if set, is told how long a call waited for the App-ID's rate limit
	// (or a 429's pause) before it was sent; calls sent at once are not reported (metrics).
	OnRateLimitWait func(time.Duration)
	Logger          *slog.Logger
	UserAgent       string // default "ferry"
}

// Client calls one iconik tenant as one user. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	opts    Options
	http    *http.Client
	limiter *appLimiter
	log     *slog.Logger
}

// New returns a Client. It does not contact iconik; call Verify for that.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("iconik: base URL %q must be an absolute http(s) URL", opts.BaseURL)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("iconik: base URL %q must not carry a query or fragment", opts.BaseURL)
	}
	if opts.AppID == "" || opts.Token == "" {
		return nil, errors.New("iconik: App-ID and Auth-Token are both required")
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxBackoff < opts.Backoff {
		opts.MaxBackoff = opts.Backoff
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = 5 * time.Minute
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 2 * time.Minute
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "ferry"
	}
	return &Client{
		base: base,
		opts: opts,
		// Redirects are not followed: iconik's API does not redirect, and following one could
		// carry the Auth-Token header elsewhere.
		http: &http.Client{
			Transport:     opts.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		limiter: limiterFor(opts.AppID, opts.RateLimit),
		log:     opts.Logger.With("component", "iconik", "base_url", base.String()),
	}, nil
}

// BaseURL returns the base URL calls go to.
func (c *Client) BaseURL() string { return c.base.String() }

// appLimiter is the process-wide limiter of one App-ID, plus the pause a 429 imposes on every
// client of that App-ID.
type appLimiter struct {
	lim *rate.Limiter

	mu         sync.Mutex
	pauseUntil time.Time
	rate       float64
}

var (
	limitersMu sync.Mutex
	limiters   = map[string]*appLimiter{}
)

func limiterFor(appID string, perSecond float64) *appLimiter {
	limit := rate.Inf
	if perSecond > 0 {
		limit = rate.Limit(perSecond)
	}
	limitersMu.Lock()
	defer limitersMu.Unlock()
	l := limiters[appID]
	if l == nil {
		// Burst 1 keeps the rate smooth: iconik counts per second, so a burst of 45 at once
		// right after a pause is what trips its limiter.
		l = &appLimiter{lim: rate.NewLimiter(limit, 1), rate: perSecond}
		limiters[appID] = l
		return l
	}
	l.mu.Lock()
	if perSecond > 0 && (l.rate <= 0 || perSecond < l.rate) {
		l.rate = perSecond
		l.lim.SetLimit(limit)
	}
	l.mu.Unlock()
	return l
}

// wait blocks until the call may be sent and returns how long that took by the limiter's own
// account (the pause plus the reservation's delay), not by a clock around it.
func (l *appLimiter) wait(ctx context.Context) (time.Duration, error) {
	l.mu.Lock()
	until := l.pauseUntil
	l.mu.Unlock()
	var waited time.Duration
	if d := time.Until(until); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return waited, err
		}
		waited = d
	}
	r := l.lim.Reserve()
	if !r.OK() {
		return waited, fmt.Errorf("rate limiter: no reservation possible")
	}
	d := r.Delay()
	if d <= 0 {
		return waited, nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		// As rate.Limiter.Wait does: fail now rather than sleep into the deadline.
		r.Cancel()
		return waited, fmt.Errorf("rate limiter: waiting %s would exceed the context's deadline", d)
	}
	if err := sleep(ctx, d); err != nil {
		r.Cancel() // the token goes back to calls that will be sent
		return waited, err
	}
	return waited + d, nil
}

func (l *appLimiter) pause(d time.Duration) {
	l.mu.Lock()
	if t := time.Now().Add(d); t.After(l.pauseUntil) {
		l.pauseUntil = t
	}
	l.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call describes one API call.
type call struct {
	method string
	path   string     // "/API/..." or an absolute URL (next_url)
	query  url.Values // merged into path's query
	body   any        // JSON-encoded when non-nil
	// retryPost allows retrying a POST on 5xx/network errors: set for POSTs that create nothing
	// or whose duplicate is harmless or detectable by the caller.
	retryPost bool
	out       any // JSON-decoded from a 2xx body when non-nil
}

func (k call) idempotent() bool {
	switch k.method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return k.retryPost
}

// resolve turns a "/API/..." path or absolute URL into the URL to call. Absolute URLs (a
// next_url) are used as they are when they point at the base URL's host; otherwise only their
// path and query are used, joined to the base, so the token never goes to another host.
func (c *Client) resolve(p string, q url.Values) (*url.URL, error) {
	u, err := url.Parse(p)
	if err != nil {
		return nil, fmt.Errorf("iconik: bad URL %q: %w", p, err)
	}
	if !u.IsAbs() || !sameHost(u, c.base) {
		joined := *c.base
		joined.Path = strings.TrimRight(c.base.Path, "/") + u.Path
		joined.RawPath = ""
		if u.RawPath != "" {
			joined.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + u.RawPath
		}
		joined.RawQuery = u.RawQuery
		u = &joined
	}
	if len(q) > 0 {
		merged := u.Query()
		for k, vs := range q {
			merged[k] = vs
		}
		u.RawQuery = merged.Encode()
	}
	return u, nil
}

func sameHost(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "https" {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// do runs a call with rate limiting and retries and returns the final status.
func (c *Client) do(ctx context.Context, k call) (int, error) {
	u, err := c.resolve(k.path, k.query)
	if err != nil {
		return 0, err
	}
	var body []byte
	if k.body != nil {
		if body, err = json.Marshal(k.body); err != nil {
			return 0, fmt.Errorf("iconik: encoding %s %s body: %w", k.method, u.Path, err)
		}
	}
	for attempt := 1; ; attempt++ {
		waited, err := c.limiter.wait(ctx)
		if waited > 0 && c.opts.OnRateLimitWait != nil {
			c.opts.OnRateLimitWait(waited)
		}
		if err != nil {
			return 0, fmt.Errorf("iconik: %s %s: waiting for rate limiter: %w", k.method, u.Path, err)
		}
		status, header, respBody, err := c.attempt(ctx, k.method, u, body)
		last := attempt >= c.opts.MaxAttempts
		if err != nil {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("iconik: %s %s: %w", k.method, u.Path, ctx.Err())
			}
			if !k.idempotent() {
				return 0, fmt.Errorf("iconik: %s %s: %w (not retried: the request may have taken effect)", k.method, u.Path, err)
			}
			if last {
				return 0, fmt.Errorf("iconik: %s %s: giving up after %d attempts: %w", k.method, u.Path, attempt, err)
			}
			if err := c.backoff(ctx, k, u, attempt, 0, err.Error()); err != nil {
				return 0, err
			}
			continue
		}
		if status >= 200 && status < 300 {
			if k.out != nil && len(bytes.TrimSpace(respBody)) > 0 {
				if err := json.Unmarshal(respBody, k.out); err != nil {
					return status, fmt.Errorf("iconik: %s %s: decoding %d response: %w", k.method, u.Path, status, err)
				}
			}
			return status, nil
		}
		apiErr := newError(k.method, u.Path, status, respBody)
		apiErr.Attempts = attempt
		retry := false
		var wait time.Duration
		switch {
		case status == http.StatusTooManyRequests:
			// A 429 did not take effect, so every method may be retried.
			retry = true
			wait = retryAfter(header.Get("Retry-After"), c.opts.MaxRetryAfter)
			if wait > 0 {
				c.limiter.pause(wait) // every client of this App-ID waits, not only this call
			}
		case status >= 500:
			retry = k.idempotent()
			// A 503 may say when to come back; that beats guessing.
			wait = retryAfter(header.Get("Retry-After"), c.opts.MaxRetryAfter)
		}
		if !retry || last {
			return status, apiErr
		}
		if err := c.backoff(ctx, k, u, attempt, wait, fmt.Sprintf("status %d", status)); err != nil {
			return status, err
		}
	}
}

func (c *Client) backoff(ctx context.Context, k call, u *url.URL, attempt int, wait time.Duration, why string) error {
	if wait <= 0 {
		d := c.opts.Backoff << (attempt - 1)
		if d <= 0 || d > c.opts.MaxBackoff {
			d = c.opts.MaxBackoff
		}
		// "Equal jitter": at least half the delay, so retries never hammer, plus a random half
		// so clients that failed together do not retry together.
		wait = d/2 + rand.N(d/2+1)
	}
	c.log.Debug("iconik call retrying", "method", k.method, "path", u.Path, "attempt", attempt, "wait", wait, "reason", why)
	if notify, ok := ctx.Value(retryNoticeKey{}).(func(RetryNotice)); ok && notify != nil {
		notify(RetryNotice{Method: k.method, Path: u.Path, Attempt: attempt, Wait: wait, Reason: why})
	}
	if err := sleep(ctx, wait); err != nil {
		return fmt.Errorf("iconik: %s %s: waiting to retry after %s: %w", k.method, u.Path, why, err)
	}
	return nil
}

// retryAfter parses Retry-After (seconds or an HTTP date); 0 when absent or unparsable.
func retryAfter(v string, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	if d < 0 {
		d = 0
	}
	if d > limit {
		d = limit
	}
	return d
}

const maxResponse = 64 << 20

func (c *Client) attempt(ctx context.Context, method string, u *url.URL, body []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("App-ID", c.opts.AppID)
	req.Header.Set("Auth-Token", c.opts.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, stripURL(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading %d response: %w", resp.StatusCode, stripURL(err))
	}
	return resp.StatusCode, resp.Header, b, nil
}

// stripURL drops *url.Error's URL (the caller already names method and path; a next_url's query
// is noise) and keeps the cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		var ne net.Error
		if errors.As(ue.Err, &ne) && ne.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// get, post, ... are shorthands for do.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, out: out})
	return err
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body, out any, retryPost bool) (int, error) {
	return c.do(ctx, call{method: method, path: path, query: q, body: body, out: out, retryPost: retryPost})
}

// seg escapes one path segment (ids come from callers and from iconik).
func seg(s string) string { return url.PathEscape(s) }

// RetryNotice says that a call failed and is tried again after Wait.
type RetryNotice struct {
	Method, Path string
	Attempt      int           // the attempt that failed (1 = the first)
	Wait         time.Duration // until the next attempt
	Reason       string        // "status 503", or the network error
}

func (n RetryNotice) String() string {
	return fmt.Sprintf("iconik %s %s: %s (attempt %d, retrying in %s)", n.Method, n.Path, n.Reason, n.Attempt, n.Wait.Round(time.Millisecond))
}

type retryNoticeKey struct{}

// WithRetryNotice returns a context whose calls tell notify before each
// retry they wait for, so that a caller can show what it waits on (a
// delivery's status) while the client keeps retrying on its own. notify
// runs on the calling goroutine, before the wait; a nil notify silences an
// outer one.
func WithRetryNotice(ctx context.Context, notify func(RetryNotice)) context.Context {
	return context.WithValue(ctx, retryNoticeKey{}, notify)
}
