package web

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// APIToken is an admin API token as the API shows it: never its secret,
// which is returned once, when it is created.
type APIToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	UserID     string     `json:"user_id"`
	UserEmail  string     `json:"user_email"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"` // recorded to within a minute
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	State      string     `json:"state"` // active, expired or revoked
}

// APITokenInput creates a token for the calling user; ExpiresAt nil: it
// works until revoked.
type APITokenInput struct {
	Name      string
	ExpiresAt *time.Time
}

// APITokens is the API-token part of the domain. Any admin sees and may
// revoke every token: revoking a leaked token must not wait for its owner.
type APITokens interface {
	// APITokenCreate returns the token and its secret (shown once).
	APITokenCreate(ctx context.Context, userID string, in APITokenInput) (APIToken, string, error)
	APITokenList(ctx context.Context) ([]APIToken, error)
	// APITokenRevoke refuses the token from its next request on; revoking
	// twice answers the first revocation.
	APITokenRevoke(ctx context.Context, id string) (APIToken, error)
}

type tokenRequest struct {
	Name      string     `json:"name"`
	ExpiresIn string     `json:"expires_in,omitempty"` // Go duration, e.g. "720h"
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}
type createdToken struct {
	Token  APIToken `json:"token"`
	Secret string   `json:"secret"` // the bearer token; shown this once, stored only hashed
}
type tokenResponse struct {
	Token APIToken `json:"token"`
}
type tokensResponse struct {
	Tokens []APIToken `json:"tokens"`
}

// The token routes are registered in the OpenAPI table here, beside their
// types, as the connection routes are.
func init() {
	for k, v := range map[string][3]any{
		"GET /api/v1/tokens":         {nil, tokensResponse{}, 200},
		"POST /api/v1/tokens":        {tokenRequest{}, createdToken{}, 201},
		"DELETE /api/v1/tokens/{id}": {nil, tokenResponse{}, 200},
	} {
		e := apiSchemas[k]
		e.req, e.resp, e.status = v[0], v[1], v[2].(int)
		apiSchemas[k] = e
	}
}

func (s *Server) tokenList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.opt.Store.APITokenList(r.Context())
	if err != nil {
		return fmt.Errorf("listing API tokens: %w", err)
	}
	if list == nil {
		list = []APIToken{}
	}
	writeJSON(w, http.StatusOK, tokensResponse{Tokens: list})
	return nil
}

func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	in := APITokenInput{Name: req.Name, ExpiresAt: req.ExpiresAt}
	if req.ExpiresIn != "" {
		if req.ExpiresAt != nil {
			return errorf(http.StatusUnprocessableEntity, "invalid_expires_in", "Give expires_in or expires_at, not both.")
		}
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return errorf(http.StatusUnprocessableEntity, "invalid_expires_in", "expires_in must be a positive duration like 720h, got %q.", req.ExpiresIn)
		}
		t := s.now().Add(d).UTC()
		in.ExpiresAt = &t
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(s.now()) {
		return errorf(http.StatusUnprocessableEntity, "invalid_expires_at", "expires_at must be in the future.")
	}
	t, secret, err := s.opt.Store.APITokenCreate(r.Context(), currentUser(r).ID, in)
	if err != nil {
		return fmt.Errorf("creating API token %q: %w", in.Name, err)
	}
	writeJSON(w, http.StatusCreated, createdToken{Token: t, Secret: secret})
	return nil
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) error {
	t, err := s.opt.Store.APITokenRevoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundAs(err, "API token")
	}
	writeJSON(w, http.StatusOK, tokenResponse{Token: t})
	return nil
}
