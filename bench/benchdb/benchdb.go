// Package benchdb holds what the benchmarks share: fresh, migrated
// databases (a SQLite file in a temporary folder, or a new schema on a
// PostgreSQL server, removed again by the returned cleanup) and an
// optional CPU profile of a run.
package benchdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"carefront/internal/sqldb"
)

// Fresh returns an empty, migrated database of dialect d; pg is the
// PostgreSQL DSN for the Postgres dialect.
func Fresh(ctx context.Context, d sqldb.Dialect, pg string, durable bool) (*sqldb.DB, func(), error) {
	o := sqldb.Options{Durable: durable}
	cleanup := func() {}
	if d == sqldb.SQLite {
		dir, err := os.MkdirTemp("", "carefront-bench-")
		if err != nil {
			return nil, nil, err
		}
		o.DataDir = dir
		cleanup = func() { os.RemoveAll(dir) }
	} else {
		admin, err := sql.Open("pgx", pg)
		if err != nil {
			return nil, nil, err
		}
		var b [6]byte
		rand.Read(b[:])
		schema := "bench_" + hex.EncodeToString(b[:])
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			admin.Close()
			return nil, nil, err
		}
		o.URL, o.Schema = pg, schema
		cleanup = func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE"); admin.Close() }
	}
	db, err := sqldb.Open(ctx, o)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		cleanup()
		return nil, nil, err
	}
	return db, func() { db.Close(); cleanup() }, nil
}

// FreshPair returns two handles on one new, migrated PostgreSQL schema,
// as two carefront instances sharing a database would hold.
func FreshPair(ctx context.Context, pg string) (*sqldb.DB, *sqldb.DB, func(), error) {
	admin, err := sql.Open("pgx", pg)
	if err != nil {
		return nil, nil, nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, nil, nil, err
	}
	cleanup := func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE"); admin.Close() }
	o := sqldb.Options{URL: pg, Schema: schema, Durable: true}
	db1, err := sqldb.Open(ctx, o)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	if _, err := db1.Migrate(ctx); err != nil {
		db1.Close()
		cleanup()
		return nil, nil, nil, err
	}
	db2, err := sqldb.Open(ctx, o)
	if err != nil {
		db1.Close()
		cleanup()
		return nil, nil, nil, err
	}
	return db1, db2, func() { db1.Close(); db2.Close(); cleanup() }, nil
}
