package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// route is one iconik operation the emulator serves. pattern is the spec's
// path ("/v1/assets/{asset_id}/"), so roles and body rules are found in
// specOps under key().
type route struct {
	method, service, pattern string
	segs                     []string
	handle                   func(*Server, *call)
	noBodyCheck              bool // body rules do not apply (checked by the handler)
}

func (rt *route) key() string { return rt.service + " " + rt.method + " " + rt.pattern }

func (s *Server) buildRoutes() []*route { return routeTable() }

// match reports whether p (service-relative, with trailing slash) fits the
// route, its path parameters, and how many literal segments matched.
func (rt *route) match(method string, segs []string) (map[string]string, int, bool) {
	if rt.method != method || len(segs) != len(rt.segs) {
		return nil, 0, false
	}
	params := map[string]string{}
	lit := 0
	for i, want := range rt.segs {
		if strings.HasPrefix(want, "{") {
			params[strings.Trim(want, "{}")] = segs[i]
			continue
		}
		if want != segs[i] {
			return nil, 0, false
		}
		lit++
	}
	return params, lit, true
}

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// call is one API request being served.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	rt     *route
	tok    *token
	user   *user
	params map[string]string
	q      url.Values
	body   map[string]any
	gen    int64 // the state generation the call's change made; 0 = no change
}

func (c *call) param(name string) string { return c.params[name] }

func (c *call) json(status int, v any) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(c.w).Encode(v)
	}
}

func (c *call) noContent(status int) { c.w.WriteHeader(status) }

// fail answers iconik's list-shaped error: {"errors": ["message"]}.
func (c *call) fail(status int, msg string) { writeErrors(c.w, status, msg) }

// invalid answers iconik's validation error: {"errors": {"field": "message"}}.
func (c *call) invalid(fields map[string]string) {
	c.json(http.StatusBadRequest, map[string]any{"errors": fields})
}

func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": msgs})
}

// serveAPI is the control plane: faults, authentication, routing, roles, body
// rules, then the operation.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if d := s.opts.Faults.Latency; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	// /API/{service}/{rest}: the spec's paths are relative to /API/{service}/.
	rest := strings.TrimPrefix(r.URL.Path, "/API/")
	service, p, _ := strings.Cut(rest, "/")
	p = "/" + p
	if !strings.HasSuffix(p, "/") {
		p += "/" // iconik's paths end in "/"; accept both
	}
	appID := r.Header.Get("App-ID")
	if ok, retry, remaining := s.limits.allow(appID); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		w.Header().Set("RateLimit-Remaining", "0")
		writeErrors(w, http.StatusTooManyRequests, "Too many requests")
		return
	} else if remaining >= 0 {
		w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
	}
	if s.faults.roll(s.opts.Faults.FailRate) {
		writeErrors(w, http.StatusInternalServerError, "Internal server error (injected fault)")
		return
	}
	tok, u := s.authenticate(appID, r.Header.Get("Auth-Token"))
	if tok == nil {
		writeErrors(w, http.StatusUnauthorized, "Token is invalid")
		return
	}
	segs := splitPath(p)
	var best *route
	var bestParams map[string]string
	bestLit, pathKnown := -1, false
	for _, rt := range s.routes {
		if params, lit, ok := rt.match(r.Method, segs); ok && rt.service == service && lit > bestLit {
			best, bestParams, bestLit = rt, params, lit
		}
		if rt.service == service && len(rt.segs) == len(segs) {
			if _, _, ok := rt.match(rt.method, segs); ok {
				pathKnown = true
			}
		}
	}
	if best == nil {
		if pathKnown {
			writeErrors(w, http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		writeErrors(w, http.StatusNotFound, "Not found")
		return
	}
	for _, need := range specOps[best.key()].Roles {
		if !u.IsAdmin && !slices.Contains(tok.Roles, need) {
			writeErrors(w, s.opts.Faults.MissingRoleStatus, "Permission denied")
			return
		}
	}
	// The answer is held until the call's change (if any) is on disk, so
	// that nothing the emulator answered is lost to a kill -9.
	held := &heldAnswer{header: http.Header{}}
	c := &call{s: s, w: held, r: r, rt: best, tok: tok, user: u, params: bestParams, q: r.URL.Query()}
	defer func() { s.answer(w, c, held) }()
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			c.fail(http.StatusBadRequest, "Could not read the request body")
			return
		}
		c.body = map[string]any{}
		if len(bytes.TrimSpace(raw)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var v any
			err := dec.Decode(&v)
			if err == nil && dec.Decode(new(any)) != io.EOF {
				err = errors.New("data after the JSON value")
			}
			if err != nil {
				c.fail(http.StatusBadRequest, "Invalid JSON in the request body: "+err.Error())
				return
			}
			m, ok := v.(map[string]any)
			if !ok {
				c.invalid(map[string]string{"_schema": "Invalid input type."})
				return
			}
			c.body = m
		}
		if spec := specOps[best.key()].Body; spec != nil && !best.noBodyCheck {
			// PATCH is a partial update: iconik's PATCH bodies reuse the full
			// schemas, whose required fields are then not required.
			if errs := spec.validate(c.body, r.Method == http.MethodPatch); len(errs) > 0 {
				c.invalid(errs)
				return
			}
		}
	}
	best.handle(s, c)
	s.log.Debug("iconik emulator call", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
}

func (s *Server) authenticate(appID, tok string) (*token, *user) {
	if appID == "" || tok == "" {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.st.Tokens {
		if t.AppID == appID && subtle.ConstantTimeCompare([]byte(t.Token), []byte(tok)) == 1 {
			u := s.st.userByID(t.UserID)
			// Inactive and blocked users still authenticate, so that a client
			// can read users/current and tell why it may not connect.
			if u == nil || u.Status == "DELETED" {
				return nil, nil
			}
			return t, u
		}
	}
	return nil, nil
}

// limiter is the per-App-ID rate limit fault (x/time/rate token buckets).
type limiter struct {
	rps float64
	mu  sync.Mutex
	by  map[string]*rate.Limiter
}

func newLimiter(rps float64) *limiter { return &limiter{rps: rps, by: map[string]*rate.Limiter{}} }

// allow takes one token for appID; when refused it says after how many
// seconds to retry. remaining is -1 when the limit is off.
func (l *limiter) allow(appID string) (ok bool, retryAfter, remaining int) {
	if l.rps <= 0 {
		return true, 0, -1
	}
	l.mu.Lock()
	lim := l.by[appID]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(l.rps), max(1, int(math.Ceil(l.rps))))
		l.by[appID] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, max(1, int(math.Ceil(d.Seconds()))), 0
	}
	return true, 0, max(0, int(lim.TokensAt(now)))
}

// faultDice decides injected faults.
type faultDice struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newFaultDice() *faultDice {
	return &faultDice{r: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

func (f *faultDice) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r.Float64() < p
}

// ---- pagination ----

// perPage reads per_page (default def, capped at 100).
func (c *call) perPage(def int) (int, bool) {
	v := c.q.Get("per_page")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		c.invalid(map[string]string{"per_page": "Must be greater than or equal to 1."})
		return 0, false
	}
	return min(n, 100), true
}

// pageList answers a page-style envelope of items. past404 says whether the
// spec declares 404 "Requested page does not exist" for a page past the end.
func (c *call) pageList(items []any, past404 bool) {
	per, ok := c.perPage(10)
	if !ok {
		return
	}
	page := 1
	if v := c.q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			c.invalid(map[string]string{"page": "Must be greater than or equal to 1."})
			return
		}
		page = n
	}
	total := len(items)
	pages := (total + per - 1) / per
	if page > max(pages, 1) {
		if past404 {
			c.fail(http.StatusNotFound, "Requested page does not exist")
			return
		}
	}
	lo, hi := min((page-1)*per, total), min(page*per, total)
	objs := items[lo:hi]
	if objs == nil {
		objs = []any{}
	}
	link := func(n int) any {
		if n < 1 || n > pages {
			return nil
		}
		q := c.r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(per))
		return c.r.URL.Path + "?" + q.Encode()
	}
	c.json(http.StatusOK, map[string]any{
		"objects": objs, "page": page, "pages": pages, "per_page": per, "total": total,
		"first_url": link(1), "last_url": link(pages), "next_url": link(page + 1), "prev_url": link(page - 1),
		"scroll_id": nil, "facets": map[string]any{},
	})
}

// cursorList answers a per_page + last_id list (files, file sets, formats, keyframes).
func (c *call) cursorList(items []doc, render func(doc) doc) {
	per, ok := c.perPage(10)
	if !ok {
		return
	}
	start := 0
	if last := c.q.Get("last_id"); last != "" {
		start = len(items)
		for i, d := range items {
			if str(d, "id") == last {
				start = i + 1
			}
		}
	}
	end := min(start+per, len(items))
	objs := []any{}
	for _, d := range items[start:end] {
		objs = append(objs, render(d))
	}
	var next any
	if end < len(items) {
		q := c.r.URL.Query()
		q.Set("last_id", str(items[end-1], "id"))
		q.Set("per_page", strconv.Itoa(per))
		next = c.r.URL.Path + "?" + q.Encode()
	}
	c.json(http.StatusOK, map[string]any{
		"objects": objs, "per_page": per, "total": len(items), "next_url": next,
		"first_url": nil, "last_url": nil, "prev_url": nil, "scroll_id": nil,
	})
}

// queryBool reads a boolean query parameter the way iconik does.
func (c *call) queryBool(name string, def bool) bool {
	v := strings.ToLower(c.q.Get(name))
	switch v {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
		return false
	}
	return def
}

// heldAnswer buffers a call's answer until its change is saved.
type heldAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldAnswer) Header() http.Header { return h.header }

func (h *heldAnswer) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldAnswer) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

// answer sends a held answer once the call's change is on disk; when it
// could not be saved the client gets a 500 instead (like iconik failing
// after the change: a client must look before it creates again).
func (s *Server) answer(w http.ResponseWriter, c *call, held *heldAnswer) {
	if c.gen > 0 {
		if err := s.waitSaved(c.gen); err != nil {
			s.log.Error("iconik emulator: answering without the change saved", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
			writeErrors(w, http.StatusInternalServerError, "Internal server error (state not saved)")
			return
		}
	}
	for k, v := range held.header {
		w.Header()[k] = v
	}
	if held.status == 0 {
		held.status = http.StatusOK
	}
	w.WriteHeader(held.status)
	_, _ = w.Write(held.body.Bytes())
}
