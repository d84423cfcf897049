-- Sizes and counts stay integers (issue 9 item 4). SQLite turns an integer
-- sum that overflows int64 into a REAL and stores it in an INTEGER column
-- as such; no later read of the row can scan it into int64, so one sender
-- could break a package for good. PostgreSQL's BIGINT raises an error
-- instead; these triggers make SQLite refuse the write the same way (db
-- maps both to ErrOutOfRange). ferry checks its sums in Go first: the
-- triggers are the last line, not the rule.
-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER packages_sizes_are_integers_insert BEFORE INSERT ON packages
WHEN typeof(NEW.total_size) <> 'integer' OR typeof(NEW.file_count) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'packages: total_size or file_count out of range');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER packages_sizes_are_integers_update BEFORE UPDATE OF total_size, file_count ON packages
WHEN typeof(NEW.total_size) <> 'integer' OR typeof(NEW.file_count) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'packages: total_size or file_count out of range');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER files_size_is_integer_insert BEFORE INSERT ON files
WHEN typeof(NEW.size) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'files: size out of range');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER files_size_is_integer_update BEFORE UPDATE OF size ON files
WHEN typeof(NEW.size) <> 'integer'
BEGIN
    SELECT RAISE(ABORT, 'files: size out of range');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER files_size_is_integer_update;
DROP TRIGGER files_size_is_integer_insert;
DROP TRIGGER packages_sizes_are_integers_update;
DROP TRIGGER packages_sizes_are_integers_insert;
