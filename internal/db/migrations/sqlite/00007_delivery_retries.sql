-- What a delivery file waits for, and what ferry recreated (SQLite).
-- last_error and next_attempt_at say why and until when a file waits for a
-- retry (the status API reads "retrying" from them); they are written only by
-- DeliveryFileSetRetry, so a retry noted while the worker saves its progress
-- is never overwritten. recreated lists the iconik objects ferry created again
-- after iconik answered 404 for the recorded id ("collection,asset"): each
-- cause is recovered once, a second 404 for it fails the file.
-- +goose Up
ALTER TABLE delivery_files ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery_files ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE delivery_files ADD COLUMN recreated TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE delivery_files DROP COLUMN recreated;
ALTER TABLE delivery_files DROP COLUMN next_attempt_at;
ALTER TABLE delivery_files DROP COLUMN last_error;
