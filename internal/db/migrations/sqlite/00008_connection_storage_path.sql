-- What of the chosen storage decides a delivered file's object name: its
-- path prefix (iconik settings.path; iconik puts a file at
-- <storage path>/<directory_path>/<name>) and whether iconik adds a UUID to
-- file names (settings.add_uuid_to_filenames). Admission needs both to
-- refuse a file whose full object name no storage could take. '' / false
-- until the connection is next saved or re-verified.
-- +goose Up
ALTER TABLE connections ADD COLUMN storage_path TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN storage_adds_uuid BOOLEAN NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE connections DROP COLUMN storage_adds_uuid;
ALTER TABLE connections DROP COLUMN storage_path;
