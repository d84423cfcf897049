-- ferry's first schema (PostgreSQL). Lists are JSON arrays in text, as in SQLite,
-- so one set of queries serves both.
-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    token_hash  BYTEA NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_secret BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE portals (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    slug               TEXT NOT NULL UNIQUE,
    active             BOOLEAN NOT NULL DEFAULT true,
    password_hash      TEXT NOT NULL DEFAULT '',
    recipients         TEXT NOT NULL DEFAULT '[]',
    welcome_message    TEXT NOT NULL DEFAULT '',
    max_file_size      BIGINT NOT NULL DEFAULT 0,
    max_package_size   BIGINT NOT NULL DEFAULT 0,
    max_file_count     BIGINT NOT NULL DEFAULT 0,
    allowed_extensions TEXT NOT NULL DEFAULT '[]',
    denied_extensions  TEXT NOT NULL DEFAULT '[]',
    connection_ids     TEXT NOT NULL DEFAULT '[]',
    retention_days     BIGINT NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE packages (
    id                 TEXT PRIMARY KEY,
    portal_id          TEXT REFERENCES portals (id),
    created_by_user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    sender_email       TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL CHECK (state IN ('uploading', 'finalized', 'expired')),
    total_size         BIGINT NOT NULL DEFAULT 0,
    file_count         BIGINT NOT NULL DEFAULT 0,
    upload_token_hash  BYTEA NOT NULL UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL,
    finalized_at       TIMESTAMPTZ,
    expires_at         TIMESTAMPTZ
);
CREATE INDEX packages_portal_id_created_at ON packages (portal_id, created_at);
CREATE INDEX packages_created_at ON packages (created_at);
CREATE INDEX packages_expires_at ON packages (expires_at);

CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    package_id      TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    path_key        TEXT COLLATE "C" NOT NULL,
    size            BIGINT NOT NULL DEFAULT 0,
    sha256          TEXT NOT NULL DEFAULT '',
    sha256_verified BOOLEAN NOT NULL DEFAULT false,
    state           TEXT NOT NULL CHECK (state IN ('uploading', 'complete', 'failed')),
    failure_reason  TEXT NOT NULL DEFAULT '',
    upload_id       TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    UNIQUE (package_id, path_key)
);
CREATE INDEX files_upload_id ON files (upload_id) WHERE upload_id <> '';

CREATE TABLE download_links (
    id             TEXT PRIMARY KEY,
    package_id     TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    token_hash     BYTEA NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL DEFAULT '',
    download_limit BIGINT NOT NULL DEFAULT 0,
    download_count BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ
);
CREATE INDEX download_links_package_id ON download_links (package_id);

-- Connections and deliveries arrive in a later migration (00002_...).

-- +goose Down
DROP TABLE download_links;
DROP TABLE files;
DROP TABLE packages;
DROP TABLE portals;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
