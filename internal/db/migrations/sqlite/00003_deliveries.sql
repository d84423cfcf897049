-- Deliveries into iconik (SQLite). A delivery is one package to one connection;
-- delivery_files remember every iconik id and the provider upload state of each
-- file so a crash or retry resumes instead of duplicating; delivery_collections
-- claims collection paths per connection (cache of iconik ids, and the
-- "<package> (2)" rule: one package per path, never merged).
-- connection_id is not a foreign key: connections live in another migration and
-- a delivery's history outlives a deleted connection.
-- +goose Up
CREATE TABLE deliveries (
    id             TEXT PRIMARY KEY,
    package_id     TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL,
    origin         TEXT NOT NULL CHECK (origin IN ('portal', 'send_to_cloud')),
    root_title     TEXT NOT NULL,
    portal_name    TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'delivered', 'partially_failed', 'failed')),
    finalized      BOOLEAN NOT NULL DEFAULT false,
    package_title  TEXT NOT NULL DEFAULT '',
    collection_id  TEXT NOT NULL DEFAULT '',
    iconik_job_id  TEXT NOT NULL DEFAULT '',
    job_pending_at TIMESTAMP,
    error          TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    settled_at     TIMESTAMP,
    UNIQUE (package_id, connection_id)
);
CREATE INDEX deliveries_connection_id ON deliveries (connection_id);

CREATE TABLE delivery_files (
    delivery_id       TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    file_id           TEXT NOT NULL,
    path              TEXT NOT NULL,
    size              INTEGER NOT NULL DEFAULT 0,
    sha256            TEXT NOT NULL DEFAULT '',
    upload_id         TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'delivered', 'failed')),
    step              TEXT NOT NULL DEFAULT '',
    pending           TEXT NOT NULL DEFAULT '',
    pending_at        TIMESTAMP,
    collection_id     TEXT NOT NULL DEFAULT '',
    asset_id          TEXT NOT NULL DEFAULT '',
    version_id        TEXT NOT NULL DEFAULT '',
    format_id         TEXT NOT NULL DEFAULT '',
    file_set_id       TEXT NOT NULL DEFAULT '',
    iconik_file_id    TEXT NOT NULL DEFAULT '',
    job_id            TEXT NOT NULL DEFAULT '',
    keyframe_job_id   TEXT NOT NULL DEFAULT '',
    keyframes_skipped BOOLEAN NOT NULL DEFAULT false,
    transfer_state    TEXT NOT NULL DEFAULT '',
    bytes_done        INTEGER NOT NULL DEFAULT 0,
    md5               TEXT NOT NULL DEFAULT '',
    delivered_sha256  TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT NOT NULL DEFAULT '',
    lease_until       TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    settled_at        TIMESTAMP,
    PRIMARY KEY (delivery_id, file_id)
);

CREATE TABLE delivery_collections (
    connection_id TEXT NOT NULL,
    parent_id     TEXT NOT NULL,
    title         TEXT NOT NULL,
    package_id    TEXT NOT NULL DEFAULT '',
    collection_id TEXT NOT NULL DEFAULT '',
    pending_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (connection_id, parent_id, title)
);

-- +goose Down
DROP TABLE delivery_collections;
DROP TABLE delivery_files;
DROP TABLE deliveries;
