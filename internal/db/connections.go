package db

import (
	"context"
	"time"
)

// ConnectionState says whether a connection may be used.
type ConnectionState string

// The connection states: ok until a check against iconik fails for good
// (token refused, role lost, storage gone), then broken until re-verified.
const (
	ConnectionOK     ConnectionState = "ok"
	ConnectionBroken ConnectionState = "broken"
)

// Connection is an iconik tenant ferry delivers to (Cloud Connect). Its
// secrets arrive sealed by internal/secret and are stored as they come; this
// package never sees them in clear.
type Connection struct {
	ID                 string
	Name               string // unique, case-insensitively
	BaseURL            string
	AppID              string
	TokenSealed        string
	StorageID          string
	StorageName        string
	StorageMethod      string
	StoragePath        string // the storage's object key prefix (iconik settings.path)
	StorageAddsUUID    bool   // iconik adds a UUID to file names (settings.add_uuid_to_filenames)
	PortalRoot         string // collection root of portal deliveries
	SendRoot           string // collection root of Send to Cloud deliveries
	MetadataViewID     string // the view holding MetadataField
	MetadataField      string
	SlackWebhookSealed string // "" = none
	IconikUserID       string // the user the token acts as, when last verified
	IconikUserEmail    string
	State              ConnectionState
	StateReason        string // why broken, for people
	VerifiedAt         *time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const connectionCols = "id, name, base_url, app_id, token_sealed, storage_id, storage_name, storage_method, " +
	"portal_root, send_root, metadata_view_id, metadata_field, slack_webhook_sealed, iconik_user_id, iconik_user_email, " +
	"state, state_reason, verified_at, created_at, updated_at, storage_path, storage_adds_uuid"

func scanConnection(r rowScanner) (*Connection, error) {
	var c Connection
	err := r.Scan(&c.ID, &c.Name, &c.BaseURL, &c.AppID, &c.TokenSealed, &c.StorageID, &c.StorageName, &c.StorageMethod,
		&c.PortalRoot, &c.SendRoot, &c.MetadataViewID, &c.MetadataField, &c.SlackWebhookSealed, &c.IconikUserID, &c.IconikUserEmail,
		&c.State, &c.StateReason, timeScan{ptr: &c.VerifiedAt}, timeScan{dst: &c.CreatedAt}, timeScan{dst: &c.UpdatedAt}, &c.StoragePath, &c.StorageAddsUUID)
	return &c, err
}

func connectionState(s ConnectionState) ConnectionState {
	if s == "" {
		return ConnectionOK
	}
	return s
}

func (q queries) ConnectionCreate(ctx context.Context, p *ConnectionCreateParams) (*Connection, error) {
	now := ts(p.CreatedAt)
	return one(ctx, q, "ConnectionCreate", ErrNotFound, scanConnection,
		"INSERT INTO connections ("+connectionCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING "+connectionCols,
		newID(p.ID), p.Name, p.BaseURL, p.AppID, p.TokenSealed, p.StorageID, p.StorageName, p.StorageMethod,
		p.PortalRoot, p.SendRoot, p.MetadataViewID, p.MetadataField, p.SlackWebhookSealed, p.IconikUserID, p.IconikUserEmail,
		string(connectionState(p.State)), p.StateReason, tsPtr(p.VerifiedAt), now, now, p.StoragePath, p.StorageAddsUUID)
}

func (q queries) ConnectionDelete(ctx context.Context, p *ConnectionDeleteParams) error {
	_, err := q.exec(ctx, "ConnectionDelete", ErrNotFound, "DELETE FROM connections WHERE id = $1", p.ID)
	return err
}

func (q queries) ConnectionGetByID(ctx context.Context, p *ConnectionGetByIDParams) (*Connection, error) {
	return one(ctx, q, "ConnectionGetByID", ErrNotFound, scanConnection,
		"SELECT "+connectionCols+" FROM connections WHERE id = $1", p.ID)
}

func (q queries) ConnectionList(ctx context.Context, _ *ConnectionListParams) ([]*Connection, error) {
	return many(ctx, q, "ConnectionList", scanConnection, "SELECT "+connectionCols+" FROM connections ORDER BY lower(name), id")
}

func (q queries) ConnectionSetState(ctx context.Context, p *ConnectionSetStateParams) (*Connection, error) {
	return one(ctx, q, "ConnectionSetState", ErrNotFound, scanConnection,
		"UPDATE connections SET state = $2, state_reason = $3, verified_at = COALESCE($4, verified_at), updated_at = $5 WHERE id = $1 RETURNING "+connectionCols,
		p.ID, string(connectionState(p.State)), p.StateReason, tsPtr(p.VerifiedAt), ts(p.UpdatedAt))
}

func (q queries) ConnectionUpdate(ctx context.Context, p *ConnectionUpdateParams) (*Connection, error) {
	return one(ctx, q, "ConnectionUpdate", ErrNotFound, scanConnection,
		"UPDATE connections SET name = $2, base_url = $3, app_id = $4, token_sealed = $5, storage_id = $6, storage_name = $7, "+
			"storage_method = $8, portal_root = $9, send_root = $10, metadata_view_id = $11, metadata_field = $12, "+
			"slack_webhook_sealed = $13, iconik_user_id = $14, iconik_user_email = $15, state = $16, state_reason = $17, "+
			"verified_at = $18, updated_at = $19, storage_path = $20, storage_adds_uuid = $21 WHERE id = $1 RETURNING "+connectionCols,
		p.ID, p.Name, p.BaseURL, p.AppID, p.TokenSealed, p.StorageID, p.StorageName, p.StorageMethod,
		p.PortalRoot, p.SendRoot, p.MetadataViewID, p.MetadataField, p.SlackWebhookSealed, p.IconikUserID, p.IconikUserEmail,
		string(connectionState(p.State)), p.StateReason, tsPtr(p.VerifiedAt), ts(p.UpdatedAt), p.StoragePath, p.StorageAddsUUID)
}

// Params of the connection operations (kept beside them, as deliveries' are).

// ConnectionCreateParams: a zero State is ConnectionOK.
type ConnectionCreateParams struct {
	ID                 string
	Name               string
	BaseURL            string
	AppID              string
	TokenSealed        string
	StorageID          string
	StorageName        string
	StorageMethod      string
	StoragePath        string
	StorageAddsUUID    bool
	PortalRoot         string
	SendRoot           string
	MetadataViewID     string
	MetadataField      string
	SlackWebhookSealed string
	IconikUserID       string
	IconikUserEmail    string
	State              ConnectionState
	StateReason        string
	VerifiedAt         *time.Time
	CreatedAt          time.Time
}
type ConnectionDeleteParams struct{ ID string }
type ConnectionGetByIDParams struct{ ID string }

// ConnectionListParams lists every connection by name.
type ConnectionListParams struct{}

// ConnectionSetStateParams marks a connection ok or broken; a nil VerifiedAt
// keeps the stored one (a failed check is not a verification).
type ConnectionSetStateParams struct {
	ID          string
	State       ConnectionState
	StateReason string
	VerifiedAt  *time.Time
	UpdatedAt   time.Time
}

// ConnectionUpdateParams replaces every mutable field of connection ID.
type ConnectionUpdateParams struct {
	ID                 string
	Name               string
	BaseURL            string
	AppID              string
	TokenSealed        string
	StorageID          string
	StorageName        string
	StorageMethod      string
	StoragePath        string
	StorageAddsUUID    bool
	PortalRoot         string
	SendRoot           string
	MetadataViewID     string
	MetadataField      string
	SlackWebhookSealed string
	IconikUserID       string
	IconikUserEmail    string
	State              ConnectionState
	StateReason        string
	VerifiedAt         *time.Time
	UpdatedAt          time.Time
}
