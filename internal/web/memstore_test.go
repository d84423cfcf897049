package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// memStore is an in-memory Store for the HTTP-layer tests of this package:
// it checks what web does with answers (auth, status codes, streaming), while
// the real database is exercised end to end in internal/server.
type memStore struct {
	mu        sync.Mutex
	users     map[string]User   // id -> user
	passwords map[string]string // email -> password
	apiTokens map[string]string // token -> user id
	tokens    map[string]*APIToken
	tokenIDs  map[string]string // secret -> id of a token made through the API
	sessions  map[string]string // token -> user id
	portals   map[string]Portal
	portalPW  map[string]string
	packages  map[string]*Package
	upTokens  map[string]string // token -> package id
	links     map[string]*Link
	linkTok   map[string]string // token -> link id
	linkPW    map[string]string
	served    map[[2]string]int64 // {link id, file id} -> bytes
	forgiven  map[[2]string]int64 // {link id, file id} -> lost bytes given back
	seq       int
}

func newMemStore() *memStore {
	return &memStore{users: map[string]User{}, passwords: map[string]string{}, apiTokens: map[string]string{},
		tokens: map[string]*APIToken{}, tokenIDs: map[string]string{},
		sessions: map[string]string{}, portals: map[string]Portal{}, portalPW: map[string]string{},
		packages: map[string]*Package{}, upTokens: map[string]string{}, links: map[string]*Link{},
		linkTok: map[string]string{}, linkPW: map[string]string{}, served: map[[2]string]int64{}, forgiven: map[[2]string]int64{}}
}

func randToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (m *memStore) id(prefix string) string { m.seq++; return fmt.Sprintf("%s%d", prefix, m.seq) }

func (m *memStore) addUser(email, password string) (User, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := User{ID: m.id("u"), Email: email}
	m.users[u.ID] = u
	m.passwords[email] = password
	tok := randToken()
	m.apiTokens[tok] = u.ID
	return u, tok
}

func (m *memStore) UserByAPIToken(_ context.Context, token string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.apiTokens[token]; ok {
		return m.users[id], nil
	}
	if id, ok := m.tokenIDs[token]; ok {
		t := m.tokens[id]
		switch {
		case t.RevokedAt != nil:
			return User{}, errorf(401, "token_revoked", "This API token was revoked.")
		case t.ExpiresAt != nil && !time.Now().Before(*t.ExpiresAt):
			return User{}, errorf(401, "token_expired", "This API token expired.")
		}
		return m.users[t.UserID], nil
	}
	return User{}, ErrUnauthorized
}

func (m *memStore) APITokenCreate(_ context.Context, userID string, in APITokenInput) (APIToken, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.Name == "" {
		return APIToken{}, "", &InvalidError{Field: "name", Message: "An API token needs a name."}
	}
	t := &APIToken{ID: m.id("t"), Name: in.Name, UserID: userID, UserEmail: m.users[userID].Email, CreatedAt: time.Now(),
		ExpiresAt: in.ExpiresAt, State: "active"}
	secret := randToken()
	m.tokens[t.ID], m.tokenIDs[secret] = t, t.ID
	return *t, secret, nil
}

func (m *memStore) APITokenList(context.Context) ([]APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []APIToken
	for _, t := range m.tokens {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) APITokenRevoke(_ context.Context, id string) (APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok {
		return APIToken{}, ErrNotFound
	}
	if t.RevokedAt == nil {
		now := time.Now()
		t.RevokedAt, t.State = &now, "revoked"
	}
	return *t, nil
}

func (m *memStore) UserBySession(_ context.Context, token string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.sessions[token]; ok {
		return m.users[id], nil
	}
	return User{}, ErrUnauthorized
}

func (m *memStore) Login(_ context.Context, email, password string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pw, ok := m.passwords[email]; ok && pw == password {
		for _, u := range m.users {
			if u.Email == email {
				return u, nil
			}
		}
	}
	return User{}, ErrUnauthorized
}

func (m *memStore) UserCount(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.users), nil
}

func (m *memStore) UserList(context.Context) ([]User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []User
	for _, u := range m.users {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, nil
}

// newUser applies the domain's account rules as the real service does.
func (m *memStore) newUser(email, password string) (User, error) {
	if !strings.Contains(email, "@") {
		return User{}, errorf(400, "invalid_email", "%q is not an email address like name@example.com.", email)
	}
	if len([]rune(password)) < 12 {
		return User{}, errorf(400, "weak_password", "A password needs at least 12 characters.")
	}
	if _, ok := m.passwords[email]; ok {
		return User{}, errorf(409, "email_taken", "An account for %s already exists.", email)
	}
	u := User{ID: m.id("u"), Email: email}
	m.users[u.ID] = u
	m.passwords[email] = password
	return u, nil
}

func (m *memStore) UserCreate(_ context.Context, email, password string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.newUser(email, password)
}

func (m *memStore) UserCreateFirst(_ context.Context, email, password string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.users) > 0 {
		return User{}, errorf(409, "admin_exists", "An admin already exists; sign in instead.")
	}
	return m.newUser(email, password)
}

func (m *memStore) UserDelete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return ErrNotFound
	}
	if len(m.users) <= 1 {
		return errorf(409, "last_admin", "This is the only admin; add another before removing it.")
	}
	delete(m.users, id)
	delete(m.passwords, u.Email)
	for tok, uid := range m.sessions {
		if uid == id {
			delete(m.sessions, tok)
		}
	}
	return nil
}

func (m *memStore) SessionCreate(_ context.Context, userID string, _ time.Duration) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tok := randToken()
	m.sessions[tok] = userID
	return tok, nil
}

func (m *memStore) SessionDelete(_ context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, token)
	return nil
}

func (m *memStore) PortalCreate(_ context.Context, in PortalInput) (Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.Slug == "" {
		return Portal{}, &InvalidError{Field: "slug", Message: "A portal needs a slug."}
	}
	for _, p := range m.portals {
		if p.Slug == in.Slug {
			return Portal{}, fmt.Errorf("slug %q is taken: %w", in.Slug, ErrConflict)
		}
	}
	p := Portal{ID: m.id("p"), CreatedAt: time.Now(), UpdatedAt: time.Now()}
	m.apply(&p, in)
	m.portals[p.ID] = p
	return p, nil
}

func (m *memStore) apply(p *Portal, in PortalInput) {
	p.Name, p.Slug, p.Recipients, p.WelcomeMessage, p.Limits, p.ConnectionIDs, p.RetentionDays =
		in.Name, in.Slug, in.Recipients, in.WelcomeMessage, in.Limits, in.ConnectionIDs, in.RetentionDays
	if in.Active != nil {
		p.Active = *in.Active
	}
	if in.Password != nil {
		m.portalPW[p.ID] = *in.Password
		p.HasPassword = *in.Password != ""
	}
}

func (m *memStore) PortalDelete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.portals[id]; !ok {
		return ErrNotFound
	}
	delete(m.portals, id)
	return nil
}

func (m *memStore) PortalGet(_ context.Context, id string) (Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.portals[id]; ok {
		return p, nil
	}
	return Portal{}, ErrNotFound
}

func (m *memStore) PortalGetBySlug(_ context.Context, slug string) (Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.portals {
		if p.Slug == slug {
			return p, nil
		}
	}
	return Portal{}, ErrNotFound
}

func (m *memStore) PortalList(context.Context) ([]Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Portal
	for _, p := range m.portals {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) PortalUpdate(_ context.Context, id string, in PortalInput) (Portal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.portals[id]
	if !ok {
		return Portal{}, ErrNotFound
	}
	m.apply(&p, in)
	m.portals[id] = p
	return p, nil
}

func (m *memStore) PackageCreate(_ context.Context, in PackageInput) (Package, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := &Package{ID: m.id("k"), Name: in.Name, Description: in.Description, SenderEmail: in.SenderEmail,
		State: StateUploading, CreatedAt: time.Now().UTC().Truncate(time.Second), Files: []File{}}
	if in.PortalSlug != "" {
		// The domain's portal rules, reduced to what these tests need.
		var portal *Portal
		for _, pt := range m.portals {
			if pt.Slug == in.PortalSlug {
				portal = &pt
			}
		}
		switch {
		case portal == nil:
			return Package{}, "", ErrNotFound
		case !portal.Active:
			return Package{}, "", &Error{Status: 403, Code: "portal_inactive", Message: "Closed."}
		case m.portalPW[portal.ID] != "" && m.portalPW[portal.ID] != in.Password:
			return Package{}, "", &Error{Status: 401, Code: "password_incorrect", Message: "Wrong password."}
		}
		p.PortalID = &portal.ID
	}
	m.packages[p.ID] = p
	tok := randToken()
	m.upTokens[tok] = p.ID
	return *p, tok, nil
}

// addFile puts a complete file into a package (the tests' stand-in for an upload).
func (m *memStore) addFile(pkgID string, f File) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.packages[pkgID]
	f.ID = m.id("f")
	p.Files = append(p.Files, f)
	p.FileCount++
	p.TotalSize += f.Size
}

func (m *memStore) PackageDelete(_ context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.packages[id]
	if !ok {
		return nil, ErrNotFound
	}
	var ups []string
	for _, f := range p.Files {
		ups = append(ups, f.UploadID)
	}
	delete(m.packages, id)
	return ups, nil
}

func (m *memStore) PackageFinalize(_ context.Context, id string) (Package, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.packages[id]
	if !ok {
		return Package{}, ErrNotFound
	}
	p.State = StateFinalized
	return *p, nil
}

func (m *memStore) PackageGet(_ context.Context, id string) (Package, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.packages[id]; ok {
		return *p, nil
	}
	return Package{}, ErrNotFound
}

func (m *memStore) PackageIDByUploadToken(_ context.Context, tok string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.upTokens[tok]; ok {
		return id, nil
	}
	return "", ErrUnauthorized
}

func (m *memStore) PackageList(_ context.Context, f PackageFilter) ([]Package, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Package
	for _, p := range m.packages {
		if f.State != "" && p.State != f.State {
			continue
		}
		if f.PortalID != "" && (p.PortalID == nil || *p.PortalID != f.PortalID) {
			continue
		}
		if f.SenderEmail != "" && !strings.EqualFold(p.SenderEmail, f.SenderEmail) {
			continue
		}
		if q := strings.ToLower(f.Query); q != "" && !strings.Contains(strings.ToLower(p.Name), q) && !strings.Contains(strings.ToLower(p.SenderEmail), q) {
			continue
		}
		out = append(out, *p)
	}
	// Newest first, as the real Store answers (ids are increasing).
	sort.Slice(out, func(i, j int) bool {
		return len(out[i].ID) > len(out[j].ID) || len(out[i].ID) == len(out[j].ID) && out[i].ID > out[j].ID
	})
	return out, "", nil
}

func (m *memStore) LinkCreate(_ context.Context, in LinkInput) (Link, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &Link{ID: m.id("l"), PackageID: in.PackageID, ExpiresAt: in.ExpiresAt, HasPassword: in.Password != "",
		MaxDownloads: in.MaxDownloads, CreatedAt: time.Now()}
	m.links[l.ID] = l
	m.linkPW[l.ID] = in.Password
	tok := randToken()
	m.linkTok[tok] = l.ID
	return *l, tok, nil
}

func (m *memStore) LinkByToken(_ context.Context, tok string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.linkTok[tok]; ok {
		return *m.links[id], nil
	}
	return Link{}, ErrNotFound
}

func (m *memStore) LinkCheckPassword(_ context.Context, tok, pw string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.linkPW[m.linkTok[tok]] == pw, nil
}

func (m *memStore) LinkServed(_ context.Context, id string) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	for k, n := range m.served {
		if k[0] == id {
			out[k[1]] = n
		}
	}
	return out, nil
}

func (m *memStore) LinkCharge(_ context.Context, id string, charges []FileCharge, download bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range charges {
		if c.Bytes > c.MaxBytes-m.served[[2]string{id, c.FileID}] {
			return ErrLimitReached
		}
	}
	for _, c := range charges {
		m.served[[2]string{id, c.FileID}] += c.Bytes
	}
	if download {
		m.links[id].Downloads++
	}
	return nil
}

func (m *memStore) LinkRefund(_ context.Context, id, fileID string, unsent, lost, maxLost int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{id, fileID}
	forgive := max(0, min(lost, maxLost-m.forgiven[k]))
	m.forgiven[k] += forgive
	m.served[k] = max(0, m.served[k]-unsent-forgive)
	return nil
}

// memBlobs holds blobs in memory by upload id.
type memBlobs struct {
	mu sync.Mutex
	b  map[string][]byte
}

type memBlob struct{ *bytesReaderAt }

type bytesReaderAt struct{ data []byte }

func (b *bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b.data)) {
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (b *bytesReaderAt) Close() error { return nil }
func (b *bytesReaderAt) Size() int64  { return int64(len(b.data)) }

func (m *memBlobs) Open(_ context.Context, id string) (Blob, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.b[id]
	if !ok {
		return nil, ErrNotFound
	}
	return memBlob{&bytesReaderAt{d}}, nil
}

func (m *memBlobs) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.b, id)
	return nil
}
