// Package db is ferry's storage: schema migrations (goose, embedded SQL per
// dialect) and one set of queries behind the Store interface, served by
// SQLite (modernc.org/sqlite, the default) and PostgreSQL (pgx stdlib), both
// through database/sql so River can share the *sql.DB and its transactions.
// Operations are named NounVerb, take one params struct, and are listed
// alphabetically in Queries; package dbtest is the conformance suite every
// dialect must pass. It holds no business rules (see internal/portal) and
// must never store a secret in clear: tokens arrive already hashed.
package db
