-- The chosen storage's path prefix (iconik settings.path): iconik puts a
-- delivered file at <storage path>/<directory_path>/<name>, so admission
-- needs it to refuse a file whose full object name no storage could take.
-- '' until the connection is next saved or re-verified.
-- +goose Up
ALTER TABLE connections ADD COLUMN storage_path TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE connections DROP COLUMN storage_path;
