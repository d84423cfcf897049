package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/ferryhq/ferry/internal/connect"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/secret"
)

// Connections is Cloud Connect as the API needs it (*connect.Service).
type Connections interface {
	Verify(ctx context.Context, p connect.Params) (*connect.Report, error)
	Create(ctx context.Context, in connect.Input) (*connect.Connection, error)
	Get(ctx context.Context, id string) (*connect.Connection, error)
	List(ctx context.Context) ([]*connect.Connection, error)
	Update(ctx context.Context, id string, u connect.Update) (*connect.Connection, error)
	Delete(ctx context.Context, id string) error
	Reverify(ctx context.Context, id string) (*connect.Connection, *connect.Report, error)
}

// The connection wire types. Secrets travel only inwards: the token and the
// Slack webhook URL are accepted, never returned (has_slack_webhook says
// whether one is set).

// ConnectionCredentials are iconik credentials to verify.
type ConnectionCredentials struct {
	BaseURL string `json:"base_url"` // default https://app.iconik.io
	AppID   string `json:"app_id"`
	Token   string `json:"token"`
}

// ConnectionInput creates a connection.
type ConnectionInput struct {
	Name            string `json:"name"`
	BaseURL         string `json:"base_url"`
	AppID           string `json:"app_id"`
	Token           string `json:"token"`
	StorageID       string `json:"storage_id"`
	PortalRoot      string `json:"portal_root"`      // default "Portal Downloads"
	SendRoot        string `json:"send_root"`        // default "MASV"
	MetadataViewID  string `json:"metadata_view_id"` // default: found or created
	SlackWebhookURL string `json:"slack_webhook_url"`
}

// ConnectionPatch changes a connection: absent fields keep their value;
// slack_webhook_url "" removes the webhook.
type ConnectionPatch struct {
	Name            *string `json:"name"`
	BaseURL         *string `json:"base_url"`
	AppID           *string `json:"app_id"`
	Token           *string `json:"token"`
	StorageID       *string `json:"storage_id"`
	PortalRoot      *string `json:"portal_root"`
	SendRoot        *string `json:"send_root"`
	MetadataViewID  *string `json:"metadata_view_id"`
	SlackWebhookURL *string `json:"slack_webhook_url"`
}

// IconikUser is the user a token acts as.
type IconikUser struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Active  bool   `json:"active"`
	IsAdmin bool   `json:"is_admin"`
}

// IconikStorage is a storage as the storage picker shows it.
type IconikStorage struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Method     string `json:"method"`
	Purpose    string `json:"purpose"`
	Status     string `json:"status"`
	Selectable bool   `json:"selectable"`
	Reason     string `json:"reason,omitempty"`
}

// RoleCheck is one required role and whether the iconik user has it.
type RoleCheck struct {
	Name    string `json:"name"`  // API name, e.g. can_create_assets
	Label   string `json:"label"` // as iconik's admin screen shows it, e.g. "Assets - create"
	Present bool   `json:"present"`
}

// Verification is what checking credentials against iconik found.
type Verification struct {
	User         IconikUser `json:"user"`
	Qualifies    bool       `json:"qualifies"`
	Reasons      []string   `json:"reasons"`
	MissingRoles []string   `json:"missing_roles"`
	// Roles is every role ferry needs, by API name and by the name iconik's
	// admin screen shows (Admin > Groups > Roles, Advanced View), and whether
	// the user has it.
	Roles    []RoleCheck     `json:"roles"`
	Storages []IconikStorage `json:"storages"`
	// OK: the user qualifies and has every role (a selectable storage is still to be chosen).
	OK bool `json:"ok"`
}

// ConnectionStorage is the storage a connection delivers to.
type ConnectionStorage struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Method string `json:"method"`
}

// Connection is a saved connection, never with its secrets.
type Connection struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	BaseURL         string            `json:"base_url"`
	AppID           string            `json:"app_id"`
	Storage         ConnectionStorage `json:"storage"`
	PortalRoot      string            `json:"portal_root"`
	SendRoot        string            `json:"send_root"`
	MetadataViewID  string            `json:"metadata_view_id"`
	MetadataField   string            `json:"metadata_field"`
	HasSlackWebhook bool              `json:"has_slack_webhook"`
	IconikUserID    string            `json:"iconik_user_id"`
	IconikUserEmail string            `json:"iconik_user_email"`
	State           string            `json:"state"` // ok | broken
	StateReason     string            `json:"state_reason"`
	VerifiedAt      *time.Time        `json:"verified_at"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	SlackError      string            `json:"slack_error,omitempty"` // why Slack refused the webhook at its last message; a new webhook clears it
}

type verificationResponse struct {
	Verification Verification `json:"verification"`
}
type connectionResponse struct {
	Connection Connection `json:"connection"`
}
type connectionsResponse struct {
	Connections []Connection `json:"connections"`
}
type reverifyResponse struct {
	Connection   Connection    `json:"connection"`
	Verification *Verification `json:"verification"`
}

// The connection routes are registered in the OpenAPI table here, beside
// their types, so routes.go and openapi.go stay one line each.
func init() {
	for k, v := range map[string][3]any{
		"POST /api/v1/connections/verify":      {ConnectionCredentials{}, verificationResponse{}, 200},
		"GET /api/v1/connections":              {nil, connectionsResponse{}, 200},
		"POST /api/v1/connections":             {ConnectionInput{}, connectionResponse{}, 201},
		"GET /api/v1/connections/{id}":         {nil, connectionResponse{}, 200},
		"PATCH /api/v1/connections/{id}":       {ConnectionPatch{}, connectionResponse{}, 200},
		"DELETE /api/v1/connections/{id}":      {nil, nil, 204},
		"POST /api/v1/connections/{id}/verify": {nil, reverifyResponse{}, 200},
	} {
		e := apiSchemas[k]
		e.req, e.resp, e.status = v[0], v[1], v[2].(int)
		apiSchemas[k] = e
	}
}

func wireVerification(r *connect.Report) Verification {
	v := Verification{
		User: IconikUser{ID: r.User.ID, Name: r.User.Name, Email: r.User.Email, Type: r.User.Type, Status: r.User.Status,
			Active: r.User.Active(), IsAdmin: r.User.IsAdmin},
		Qualifies: r.Qualifies, Reasons: nonNilStrings(r.Reasons), MissingRoles: nonNilStrings(r.MissingRoles),
		Storages: []IconikStorage{}, OK: r.OK(),
	}
	for _, role := range iconik.Roles {
		v.Roles = append(v.Roles, RoleCheck{Name: role.Name, Label: role.Label, Present: !slices.Contains(r.MissingRoles, role.Name)})
	}
	for _, s := range r.Storages {
		v.Storages = append(v.Storages, IconikStorage{ID: s.ID, Name: s.Name, Method: s.Method, Purpose: s.Purpose,
			Status: s.Status, Selectable: s.Selectable, Reason: s.Reason})
	}
	return v
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func wireConnection(c *connect.Connection) Connection {
	return Connection{
		ID: c.ID, Name: c.Name, BaseURL: c.BaseURL, AppID: c.AppID,
		Storage:    ConnectionStorage{ID: c.Storage.ID, Name: c.Storage.Name, Method: c.Storage.Method},
		PortalRoot: c.PortalRoot, SendRoot: c.SendRoot, MetadataViewID: c.MetadataViewID, MetadataField: c.MetadataField,
		HasSlackWebhook: c.HasSlackWebhook, IconikUserID: c.IconikUserID, IconikUserEmail: c.IconikUserEmail,
		State: c.State, StateReason: c.StateReason, VerifiedAt: c.VerifiedAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

// connections returns the service, or the refusal when the server has none.
func (s *Server) connections() (Connections, error) {
	if s.opt.Connections == nil {
		return nil, errorf(http.StatusServiceUnavailable, "connections_unavailable", "Cloud Connect is not enabled on this server.")
	}
	return s.opt.Connections, nil
}

// connectError turns Cloud Connect's refusals into API errors (their
// messages never hold a secret); anything else stays a 500.
func connectError(err error) error {
	if errors.Is(err, connect.ErrNotFound) {
		return notFound("connection")
	}
	if e := connect.AsError(err); e != nil {
		return errorf(e.Status, e.Code, "%s", e.Message)
	}
	return err
}

func optSecret(p *string) *secret.Value {
	if p == nil {
		return nil
	}
	v := secret.New(*p)
	return &v
}

func (s *Server) connectionVerify(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	var in ConnectionCredentials
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	rep, err := svc.Verify(r.Context(), connect.Params{BaseURL: in.BaseURL, AppID: in.AppID, Token: secret.New(in.Token)})
	if err != nil {
		return connectError(err)
	}
	writeJSON(w, http.StatusOK, verificationResponse{wireVerification(rep)})
	return nil
}

func (s *Server) connectionList(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	list, err := svc.List(r.Context())
	if err != nil {
		return connectError(err)
	}
	out := connectionsResponse{Connections: make([]Connection, 0, len(list))}
	for _, c := range list {
		out.Connections = append(out.Connections, s.withSlackFailure(r.Context(), wireConnection(c)))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) connectionCreate(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	var in ConnectionInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := svc.Create(r.Context(), connect.Input{
		Name:      in.Name,
		Params:    connect.Params{BaseURL: in.BaseURL, AppID: in.AppID, Token: secret.New(in.Token)},
		StorageID: in.StorageID, PortalRoot: in.PortalRoot, SendRoot: in.SendRoot, MetadataViewID: in.MetadataViewID,
		SlackWebhookURL: secret.New(in.SlackWebhookURL),
	})
	if err != nil {
		return connectError(err)
	}
	writeJSON(w, http.StatusCreated, connectionResponse{wireConnection(c)})
	return nil
}

func (s *Server) connectionGet(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	c, err := svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return connectError(err)
	}
	writeJSON(w, http.StatusOK, connectionResponse{s.withSlackFailure(r.Context(), wireConnection(c))})
	return nil
}

func (s *Server) connectionUpdate(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	var in ConnectionPatch
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := svc.Update(r.Context(), r.PathValue("id"), connect.Update{
		Name: in.Name, BaseURL: in.BaseURL, AppID: in.AppID, Token: optSecret(in.Token), StorageID: in.StorageID,
		PortalRoot: in.PortalRoot, SendRoot: in.SendRoot, MetadataViewID: in.MetadataViewID,
		SlackWebhookURL: optSecret(in.SlackWebhookURL),
	})
	if err != nil {
		return connectError(err)
	}
	writeJSON(w, http.StatusOK, connectionResponse{wireConnection(c)})
	return nil
}

func (s *Server) connectionDelete(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	if err := svc.Delete(r.Context(), r.PathValue("id")); err != nil {
		return connectError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) connectionReverify(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.connections()
	if err != nil {
		return err
	}
	c, rep, err := svc.Reverify(r.Context(), r.PathValue("id"))
	if err != nil {
		return connectError(err)
	}
	out := reverifyResponse{Connection: wireConnection(c)}
	if rep != nil {
		v := wireVerification(rep)
		out.Verification = &v
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
