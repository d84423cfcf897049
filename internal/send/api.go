package send

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Target is where a package goes: a portal (https://host/p/slug) or, with an
// API token, the admin API of a server (https://host).
type Target struct {
	Base  *url.URL // scheme://host[/prefix] without the /p/slug part
	Slug  string   // portal slug; empty in admin mode
	Token string   // API token (admin mode)
}

// ParseTarget validates --to and --token. Errors are the caller's mistake.
func ParseTarget(raw, token string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("--to %q is not a URL: %w", raw, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Target{}, fmt.Errorf("--to %q must be an http(s) URL like https://host/p/slug", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Target{}, fmt.Errorf("--to %q must have no query, fragment or user info", u.Redacted())
	}
	path := strings.TrimSuffix(u.Path, "/")
	base := &url.URL{Scheme: u.Scheme, Host: u.Host}
	if strings.HasSuffix(path, "/p") {
		return Target{}, fmt.Errorf("--to %q: expected https://host/p/slug", raw)
	}
	if i := strings.LastIndex(path, "/p/"); i >= 0 {
		slug := path[i+3:]
		if slug == "" || strings.Contains(slug, "/") {
			return Target{}, fmt.Errorf("--to %q: expected https://host/p/slug", raw)
		}
		base.Path = path[:i]
		return Target{Base: base, Slug: slug, Token: token}, nil
	}
	if token == "" {
		return Target{}, fmt.Errorf("--to %q is not a portal URL (https://host/p/slug); sending to a server's admin API needs --token", raw)
	}
	base.Path = path
	return Target{Base: base, Token: token}, nil
}

// String is the canonical target, used in the resume key (never holds the token).
func (t Target) String() string {
	if t.Slug != "" {
		return t.Base.String() + "/p/" + t.Slug
	}
	return t.Base.String() + " (admin API)"
}

func (t Target) url(p string) string { return strings.TrimSuffix(t.Base.String(), "/") + p }

func (t Target) packagesURL() string {
	if t.Slug == "" {
		return t.url("/api/v1/packages")
	}
	return t.url("/p/" + url.PathEscape(t.Slug) + "/packages")
}

// Package is the server's view of a package (contract C).
type Package struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	SenderEmail string        `json:"sender_email"`
	State       string        `json:"state"`
	TotalSize   int64         `json:"total_size"`
	FileCount   int           `json:"file_count"`
	Files       []PackageFile `json:"files"`
}

// PackageFile is one file the server knows about.
type PackageFile struct {
	ID       string `json:"id"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	State    string `json:"state"`
	UploadID string `json:"upload_id"`
}

// Complete reports whether the server holds the whole file.
func (f PackageFile) Complete() bool {
	switch f.State {
	case "complete", "completed", "uploaded", "done", "ready":
		return true
	}
	return false
}

// APIError is a refusal from the package API, carrying the server's message.
type APIError struct {
	Op      string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s: server said: %s (%s, HTTP %d)", e.Op, msg, e.Code, e.Status)
	}
	return fmt.Sprintf("%s: server said: %s (HTTP %d)", e.Op, msg, e.Status)
}

type api struct {
	http    *http.Client
	target  Target
	backoff func(attempt int) time.Duration // nil: 500 ms doubling
}

// apiAttempts bounds tries of one package API call: a finalize lost to a
// blip at the end of a long upload should not need a re-run.
const apiAttempts = 5

type createResp struct {
	Package     Package `json:"package"`
	UploadToken string  `json:"upload_token"`
	UploadURL   string  `json:"upload_url"`
	// Uploads answers the uploads the create call asked for, in order; a
	// server that cannot create uploads with the package leaves it out.
	Uploads []createdUpload `json:"uploads"`
}

// uploadSpec is a tus upload the package call creates along with the
// package (ferry's server does; see web/batch.go), saving a round trip
// before the first byte.
type uploadSpec struct {
	Length   int64             `json:"length"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Partial  bool              `json:"partial,omitempty"`
}

type createdUpload struct {
	URL   string `json:"url"`
	Error *struct {
		Status        int
		Code, Message string
	} `json:"error"`
}

// concatSpec is a concatenation the finalize call runs before it closes
// the package (portals only), saving the round trip of the last file's.
type concatSpec struct {
	Partials []string          `json:"partials"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// call does one package API request, retrying network errors, 5xx and 429.
func (a *api) call(ctx context.Context, op, method, u, bearer string, body, out any) error {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		payload = b
	}
	for attempt := 1; ; attempt++ {
		err := a.callOnce(ctx, op, method, u, bearer, payload, out)
		var ae *APIError
		transient := err != nil && ctx.Err() == nil &&
			(!errors.As(err, &ae) || ae.Status >= 500 || ae.Status == http.StatusTooManyRequests)
		if !transient || attempt == apiAttempts {
			return err
		}
		d := 500 * time.Millisecond << (attempt - 1)
		if a.backoff != nil {
			d = a.backoff(attempt)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

func (a *api) callOnce(ctx context.Context, op, method, u, bearer string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", op, err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Op: op, Status: resp.StatusCode}
		var j struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &j) == nil && (j.Error.Code != "" || j.Error.Message != "") {
			e.Code, e.Message = j.Error.Code, j.Error.Message
		} else if s := strings.TrimSpace(string(b)); len(s) < 300 && !strings.HasPrefix(s, "<") {
			e.Message = s
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: unexpected answer from %s: %w", op, u, err)
		}
	}
	return nil
}

// PackageInfo is what the sender tells about the package.
type PackageInfo struct {
	Name, Email, Message, Password string
}

func (a *api) create(ctx context.Context, info PackageInfo, uploads []uploadSpec) (createResp, error) {
	var out createResp
	body := map[string]any{"name": info.Name, "description": info.Message}
	if a.target.Slug != "" {
		body["sender_email"] = info.Email
		body["password"] = info.Password
	}
	if len(uploads) > 0 {
		body["uploads"] = uploads
	}
	err := a.call(ctx, "create package", http.MethodPost, a.target.packagesURL(), a.target.Token, body, &out)
	if err == nil && (out.Package.ID == "" || out.UploadToken == "") {
		err = fmt.Errorf("create package: the server's answer lacks a package id or upload token")
	}
	return out, err
}

// bearer for package calls: the upload token on portals, the API token on the admin API.
func (a *api) bearer(uploadToken string) string {
	if a.target.Slug == "" {
		return a.target.Token
	}
	return uploadToken
}

func (a *api) get(ctx context.Context, id, uploadToken string) (Package, error) {
	var out struct {
		Package Package `json:"package"`
	}
	err := a.call(ctx, "look up package "+id, http.MethodGet, a.target.packagesURL()+"/"+url.PathEscape(id), a.bearer(uploadToken), nil, &out)
	return out.Package, err
}

// finalize closes the package; a portal answers with the sender's receipt
// page too (a path on the server, made absolute here; "" otherwise).
func (a *api) finalize(ctx context.Context, id, uploadToken string, concat []concatSpec) (Package, string, error) {
	var out struct {
		Package    Package `json:"package"`
		ReceiptURL string  `json:"receipt_url"`
	}
	u := a.target.packagesURL() + "/" + url.PathEscape(id) + "/finalize"
	var body any
	if len(concat) > 0 {
		body = map[string]any{"concat": concat}
	}
	err := a.call(ctx, "finalize package "+id, http.MethodPost, u, a.bearer(uploadToken), body, &out)
	receipt := ""
	if out.ReceiptURL != "" {
		if base, perr := url.Parse(u); perr == nil {
			if ref, perr := url.Parse(out.ReceiptURL); perr == nil {
				receipt = base.ResolveReference(ref).String()
			}
		}
	}
	return out.Package, receipt, err
}
