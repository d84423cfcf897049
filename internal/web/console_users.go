package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Admin pages: every account is an admin. Adding one takes an email and a
// password typed twice; removing one is refused for the last (the Store
// checks it atomically).

type usersData struct {
	Users []User
	Self  string
	Email string
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, d usersData, refusal error) error {
	list, err := s.opt.Store.UserList(r.Context())
	if err != nil {
		return fmt.Errorf("listing admins: %w", err)
	}
	d.Users, d.Self = list, currentUser(r).ID
	if refusal != nil {
		return s.consoleForm(w, r, refusal, "users/list", "Admins", "/admin/users", d)
	}
	return s.consolePage(w, r, http.StatusOK, "users/list", "Admins", "/admin/users", d)
}

func (s *Server) consoleUsers(w http.ResponseWriter, r *http.Request) error {
	return s.usersPage(w, r, usersData{}, nil)
}

func (s *Server) consoleUserCreate(w http.ResponseWriter, r *http.Request) error {
	d := usersData{Email: strings.TrimSpace(r.PostFormValue("email"))}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		return s.usersPage(w, r, d, &InvalidError{Field: "password", Message: "The two passwords differ; type the same password twice."})
	}
	u, err := s.opt.Store.UserCreate(r.Context(), d.Email, pw)
	if err != nil {
		return s.usersPage(w, r, d, err)
	}
	return seeOther(w, r, "/admin/users", "Admin "+u.Email+" added; they can sign in now.")
}

func (s *Server) consoleUserDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var email string
	list, err := s.opt.Store.UserList(r.Context())
	if err != nil {
		return fmt.Errorf("listing admins: %w", err)
	}
	for _, u := range list {
		if u.ID == id {
			email = u.Email
		}
	}
	if err := s.opt.Store.UserDelete(r.Context(), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return notFound("admin")
		}
		return s.usersPage(w, r, usersData{}, err)
	}
	if id == currentUser(r).ID {
		// Their session went with the account.
		return seeOther(w, r, "/login", "Your admin account was removed.")
	}
	return seeOther(w, r, "/admin/users", "Admin "+email+" removed.")
}
