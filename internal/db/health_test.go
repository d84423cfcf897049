package db

import (
	"context"
	"path/filepath"
	"testing"
)

func TestMigrationsPendingSaysWhenTheSchemaIsOlderThanTheCode(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "ferry.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if pending, err := MigrationsPending(ctx, s); err != nil || pending {
		t.Fatalf("freshly migrated database: pending %v, %v; want false", pending, err)
	}
	// A database whose newest migration is not recorded: as if restored from an older backup.
	if _, err := s.SQLDB().ExecContext(ctx, "DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)"); err != nil {
		t.Fatal(err)
	}
	if pending, err := MigrationsPending(ctx, s); err != nil || !pending {
		t.Fatalf("database missing its newest migration: pending %v, %v; want true", pending, err)
	}
}
