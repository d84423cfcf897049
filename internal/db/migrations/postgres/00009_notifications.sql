-- Notifications (postgres): every email and Slack message ferry owes someone, one row
-- per (event, kind, recipient). The row is written in the same transaction as
-- the event that causes it (a package finalized, a delivery settled), together
-- with the River job that sends it; the unique key makes a replayed event a
-- no-op, so a crash or restart loses no message and creates none twice.
-- data is the snapshot the message is rendered from (no secrets: a download
-- link's token is derived again at send time); subject and bodies are kept
-- only for the outbox (no SMTP configured), where admins read them.
-- +goose Up
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    package_id  TEXT REFERENCES packages (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'slack')),
    recipient   TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
    transport   TEXT NOT NULL DEFAULT '',
    subject     TEXT NOT NULL DEFAULT '',
    body_text   TEXT NOT NULL DEFAULT '',
    body_html   TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    response    TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ,
    UNIQUE (event, kind, recipient)
);
CREATE INDEX notifications_package_id ON notifications (package_id);
CREATE INDEX notifications_transport ON notifications (transport, created_at);
CREATE INDEX notifications_recipient ON notifications (channel, recipient, created_at);

-- A portal's notification switches; no row = the defaults (the sender gets a
-- receipt).
CREATE TABLE portal_notify_settings (
    portal_id      TEXT PRIMARY KEY REFERENCES portals (id) ON DELETE CASCADE,
    sender_receipt BOOLEAN NOT NULL DEFAULT true,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- Who asked for a Send to Cloud (the admin its "Transfer to iconik" email
-- goes to), per package and connection; the latest request wins.
CREATE TABLE notify_requesters (
    package_id    TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL,
    email         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (package_id, connection_id)
);

-- +goose Down
DROP TABLE notify_requesters;
DROP TABLE portal_notify_settings;
DROP TABLE notifications;
