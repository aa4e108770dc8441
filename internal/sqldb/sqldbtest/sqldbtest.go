// Package sqldbtest runs store tests on every database carefront supports:
// always on a fresh SQLite file, and on PostgreSQL when CAREFRONT_TEST_POSTGRES
// holds a DSN, each test in its own schema that is dropped afterwards.
//
// It is for tests only and never opens a database a user's data lives in.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"carefront/internal/sqldb"
)

// EnvPostgres names the variable holding the PostgreSQL test DSN.
const EnvPostgres = "CAREFRONT_TEST_POSTGRES"

// Each runs fn as a subtest on every available database, each given a fresh,
// migrated DB. CI sets CAREFRONT_TEST_POSTGRES, so PostgreSQL is never
// silently skipped there: with CI set and no DSN, the test fails.
func Each(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, Open(t, sqldb.SQLite)) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(EnvPostgres) == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not set on CI; PostgreSQL tests must run", EnvPostgres)
			}
			t.Skipf("%s not set", EnvPostgres)
		}
		fn(t, Open(t, sqldb.Postgres))
	})
}

// Options returns the Options of a fresh database of dialect d, creating and
// later dropping a PostgreSQL schema for it. The clock is fixed unless the
// caller replaces it.
func Options(t testing.TB, d sqldb.Dialect) sqldb.Options {
	t.Helper()
	o := sqldb.Options{DataDir: DataDir(t), Durable: true}
	if d == sqldb.SQLite {
		return o
	}
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skipf("%s not set", EnvPostgres)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	o.URL = dsn
	o.Schema = schema
	return o
}

// Open returns a fresh, migrated database of dialect d, closed at cleanup.
func Open(t testing.TB, d sqldb.Dialect) *sqldb.DB {
	t.Helper()
	return OpenWith(t, Options(t, d))
}

// OpenWith opens and migrates the database o describes, closed at cleanup.
func OpenWith(t testing.TB, o sqldb.Options) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, o)
	if err != nil {
		t.Fatalf("sqldb.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// Clock is a settable clock for a test database: Use makes it the
// database's clock, so expiries and timeouts can be stepped through.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// UseClock gives db a clock starting at 2026-11-23 10:00 UTC and returns it.
func UseClock(db *sqldb.DB) *Clock {
	c := &Clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	db.Now = c.Now
	return c
}

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// DataDir returns a new, empty data dir for one test, with the mode 0700
// carefront requires (t.TempDir's folders are open to others).
func DataDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}
