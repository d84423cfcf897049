-- API tokens that can expire and be revoked (PostgreSQL). A revoked token
-- keeps its row, so the list still shows who had it and when it was last used.
-- Tokens made before tokens needed a name keep working, under a name that
-- says where they came from.
-- +goose Up
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE api_tokens ADD COLUMN revoked_at TIMESTAMPTZ;
UPDATE api_tokens SET name = 'token created before names' WHERE trim(name) = '';

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN revoked_at;
ALTER TABLE api_tokens DROP COLUMN expires_at;
