-- Cloud Connect: iconik tenants ferry delivers to (SQLite). Secrets are stored
-- only sealed by internal/secret ("v1:<key id>:<data>", '' = none).
-- +goose Up
CREATE TABLE connections (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    base_url             TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    token_sealed         TEXT NOT NULL,
    storage_id           TEXT NOT NULL,
    storage_name         TEXT NOT NULL DEFAULT '',
    storage_method       TEXT NOT NULL DEFAULT '',
    portal_root          TEXT NOT NULL,
    send_root            TEXT NOT NULL,
    metadata_view_id     TEXT NOT NULL DEFAULT '',
    metadata_field       TEXT NOT NULL DEFAULT 'description',
    slack_webhook_sealed TEXT NOT NULL DEFAULT '',
    iconik_user_id       TEXT NOT NULL DEFAULT '',
    iconik_user_email    TEXT NOT NULL DEFAULT '',
    state                TEXT NOT NULL CHECK (state IN ('ok', 'broken')),
    state_reason         TEXT NOT NULL DEFAULT '',
    verified_at          TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX connections_name ON connections (lower(name));

-- +goose Down
DROP TABLE connections;
