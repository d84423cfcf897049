package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API token pages: the list with a create form and revoke buttons, and the
// page showing a new token's secret, the only time it is ever shown (it is
// stored hashed). The secret is rendered into that answer, never put in a
// redirect's URL, where it would land in the browser's history and logs.

type tokensData struct {
	Tokens  []APIToken
	Name    string
	Expires string // days, as typed
}

func (s *Server) consoleTokens(w http.ResponseWriter, r *http.Request) error {
	return s.tokensPage(w, r, http.StatusOK, tokensData{}, nil)
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, status int, d tokensData, refusal error) error {
	list, err := s.opt.Store.APITokenList(r.Context())
	if err != nil {
		return fmt.Errorf("listing API tokens: %w", err)
	}
	d.Tokens = list
	if refusal != nil {
		return s.consoleForm(w, r, refusal, "tokens/list", "API tokens", "/admin/tokens", d)
	}
	return s.consolePage(w, r, status, "tokens/list", "API tokens", "/admin/tokens", d)
}

type tokenCreated struct {
	Token  APIToken
	Secret string
}

func (s *Server) consoleTokenCreate(w http.ResponseWriter, r *http.Request) error {
	d := tokensData{Name: strings.TrimSpace(r.PostFormValue("name")), Expires: strings.TrimSpace(r.PostFormValue("expires_days"))}
	in := APITokenInput{Name: d.Name}
	if d.Expires != "" {
		days, err := strconv.Atoi(d.Expires)
		if err != nil || days < 1 || days > 3650 {
			return s.tokensPage(w, r, 0, d, &InvalidError{Field: "expires", Message: fmt.Sprintf("Expires after: %q is not a number of days from 1 to 3650 (leave it empty for a token that works until revoked).", d.Expires)})
		}
		t := s.now().Add(time.Duration(days) * 24 * time.Hour).UTC()
		in.ExpiresAt = &t
	}
	t, secret, err := s.opt.Store.APITokenCreate(r.Context(), currentUser(r).ID, in)
	if err != nil {
		return s.tokensPage(w, r, 0, d, err)
	}
	return s.consolePage(w, r, http.StatusCreated, "tokens/created", "API token created", "/admin/tokens", tokenCreated{Token: t, Secret: secret})
}

func (s *Server) consoleTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	t, err := s.opt.Store.APITokenRevoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFoundAs(err, "API token")
	}
	return seeOther(w, r, "/admin/tokens", "Token "+t.Name+" revoked: it is refused from its next request on.")
}
