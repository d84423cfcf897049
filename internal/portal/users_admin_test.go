package portal

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/testbed"
)

func bothDialects(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newFixture(t)) })
	t.Run("postgres", func(t *testing.T) {
		store, err := db.Open(context.Background(), testbed.Postgres(t).CreateDatabase(t), db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		fn(t, fixtureOn(store))
	})
}

// Two visitors submitting a fresh server's first-run form at once: exactly
// one becomes admin, the other is told an admin exists.
func TestFirstAdminIsCreatedOnceUnderConcurrentPosts(t *testing.T) {
	bothDialects(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = f.svc.CreateFirstAdmin(ctx, fmt.Sprintf("a%d@example.com", i), "a long enough password")
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				wantCode(t, err, "admin_exists")
			}
		}
		if cnt, _ := f.db.UserCount(ctx); ok != 1 || cnt != 1 {
			t.Fatalf("%d succeeded, %d users; want exactly one", ok, cnt)
		}
		_, err := f.svc.CreateFirstAdmin(ctx, "late@example.com", "a long enough password")
		wantCode(t, err, "admin_exists")
	})
}

func TestCreateFirstAdminAppliesTheAccountRules(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.CreateFirstAdmin(context.Background(), "x", "a long enough password")
	wantCode(t, err, "invalid_email")
	_, err = f.svc.CreateFirstAdmin(context.Background(), "x@example.com", "short")
	wantCode(t, err, "weak_password")
}

// Two admins removing each other at once leave one, never none.
func TestTheLastAdminIsNeverDeleted(t *testing.T) {
	bothDialects(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		a, err := f.svc.CreateUser(ctx, "a@example.com", "a long enough password", true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.svc.CreateUser(ctx, "b@example.com", "a long enough password", true)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{a.ID, b.ID} {
			wg.Go(func() { errs[i] = f.svc.DeleteUser(ctx, id) })
		}
		wg.Wait()
		if cnt, _ := f.db.UserCount(ctx); cnt != 1 {
			t.Fatalf("%d users left (errors %v), want 1", cnt, errs)
		}
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("errors %v: want exactly one refusal", errs)
		}
		for _, err := range errs {
			if err != nil {
				wantCode(t, err, "last_admin")
			}
		}
		_, err = f.db.UserGetByID(ctx, &db.UserGetByIDParams{ID: "missing"})
		if err == nil {
			t.Fatal("missing user found")
		}
		if err := f.svc.DeleteUser(ctx, "missing"); err == nil {
			t.Fatal("deleting an unknown user succeeded")
		}
	})
}

// UsersLock holds off a second transaction's UsersLock on PostgreSQL (SQLite
// runs one write transaction at a time anyway): with the lock held, another
// transaction asking for it gives up at its lock_timeout.
func TestUsersLockExcludesAnotherTransactionOnPostgres(t *testing.T) {
	store, err := db.Open(context.Background(), testbed.Postgres(t).CreateDatabase(t), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	var second error
	err = store.InTx(ctx, func(tx db.Tx) error {
		if err := tx.UsersLock(ctx); err != nil {
			return err
		}
		second = store.InTx(ctx, func(tx2 db.Tx) error {
			if _, err := tx2.SQLTx().ExecContext(ctx, "SET LOCAL lock_timeout = '200ms'"); err != nil {
				return err
			}
			return tx2.UsersLock(ctx)
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if second == nil || !strings.Contains(second.Error(), "lock") {
		t.Fatalf("a second UsersLock while the first is held: %v, want a lock timeout", second)
	}
}
