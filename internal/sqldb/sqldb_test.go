package sqldb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"SELECT '?' , ? FROM t", "SELECT '?' , $1 FROM t"},
		{`SELECT "we?ird" FROM t WHERE x = ?`, `SELECT "we?ird" FROM t WHERE x = $1`},
		{"INSERT INTO t VALUES (?, ?), (?, ?)", "INSERT INTO t VALUES ($1, $2), ($3, $4)"},
	}
	for _, tt := range tests {
		if got := sqldb.Rebind(sqldb.Postgres, tt.in); got != tt.want {
			t.Errorf("Rebind(postgres, %q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := sqldb.Rebind(sqldb.SQLite, tt.in); got != tt.in {
			t.Errorf("Rebind(sqlite, %q) = %q, want it unchanged", tt.in, got)
		}
	}
}

func TestReadyOnlyAfterMigrations(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			o := sqldbtest.Options(t, d)
			ctx := context.Background()
			db, err := sqldb.Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Ready(ctx); err == nil || !strings.Contains(err.Error(), "pending") {
				t.Errorf("Ready before Migrate = %v, want migrations pending", err)
			}
			res, err := db.Migrate(ctx)
			if err != nil || len(res) == 0 {
				t.Fatalf("Migrate = %d results, %v", len(res), err)
			}
			if err := db.Ready(ctx); err != nil {
				t.Errorf("Ready after Migrate = %v", err)
			}
			if res, err := db.Migrate(ctx); err != nil || len(res) != 0 {
				t.Errorf("second Migrate = %d results, %v; want nothing to do", len(res), err)
			}
		})
	}
}

func TestWriteRollsBackOnError(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.RawWriter().Exec("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err := db.Write(ctx, func(tx *sqldb.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO note (id, body) VALUES (?, ?)", 1, "first"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want boom", err)
		}
		func() {
			defer func() { recover() }()
			db.Write(ctx, func(tx *sqldb.Tx) error {
				tx.Exec(ctx, "INSERT INTO note (id, body) VALUES (?, ?)", 2, "second")
				panic("half-way")
			})
		}()
		var n int
		err = db.Read(ctx, func(tx *sqldb.Tx) error { return tx.QueryRow(ctx, "SELECT COUNT(*) FROM note").Scan(&n) })
		if err != nil || n != 0 {
			t.Errorf("rows after failed writes = %d, %v; want 0 (nothing half-written)", n, err)
		}
	})
}

func TestReadIsReadOnly(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		err := db.Read(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO audit_checkpoint (seq, hash, key_id, signature, signed_at) VALUES (1, ?, 'k', ?, 'now')", []byte{1}, []byte{2})
			return err
		})
		if err == nil {
			t.Error("a write inside Read succeeded, want it refused")
		}
	})
}

func TestReadOneIsReadOnly(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		err := db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO audit_checkpoint (seq, hash, key_id, signature, signed_at) VALUES (1, ?, 'k', ?, 'now')", []byte{1}, []byte{2})
			return err
		})
		if err == nil {
			t.Fatal("a write inside ReadOne succeeded, want it refused")
		}
		var n int
		if err := db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM audit_checkpoint").Scan(&n)
		}); err != nil || n != 0 {
			t.Fatalf("count = %d, %v", n, err)
		}
	})
}

func TestReplicasMigrateConcurrently(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			o := sqldbtest.Options(t, d)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := sqldb.Open(ctx, o)
					if err != nil {
						errs[i] = err
						return
					}
					defer db.Close()
					if _, err := db.Migrate(ctx); err != nil {
						errs[i] = err
						return
					}
					errs[i] = db.Ready(ctx)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
				}
			}
		})
	}
}

func TestOpenFailsClearly(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	tests := []struct {
		name string
		o    sqldb.Options
		want string
	}{
		{"data dir under a file", sqldb.Options{DataDir: filepath.Join(file, "data")}, "cannot create it: not a directory; set --data-dir"},
		{"read-only data dir", sqldb.Options{DataDir: "/proc/carefront"}, "set --data-dir (CAREFRONT_DATA_DIR) to a writable folder"},
		{"unreachable PostgreSQL", sqldb.Options{URL: "postgres://carefront:hunter2@127.0.0.1:1/carefront?connect_timeout=2"}, "cannot connect to PostgreSQL at 127.0.0.1:1"},
		{"malformed URL", sqldb.Options{URL: "postgres://carefront:hunter2@[::1/x"}, "not a valid PostgreSQL URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqldb.Open(ctx, tt.o)
			if err == nil {
				db.Close()
				t.Fatal("Open = nil error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "hunter2") {
				t.Errorf("Open error = %q, want one line with %q and no password", msg, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(file, "data")); err == nil {
		t.Error("something was created under the file")
	}
}

func TestDataDirAndFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	t.Run("open data dir refused", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o750, 0o705, 0o777} {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, mode)
			db, err := sqldb.Open(ctx, sqldb.Options{DataDir: dir})
			if err == nil {
				db.Close()
				t.Fatalf("mode %04o: Open = nil error", mode)
			}
			if want := "run chmod 700 " + dir; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("mode %04o: Open error = %q, want one line with %q", mode, err, want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("mode %04o: %d files were created in the refused dir", mode, len(entries))
			}
		}
	})
	t.Run("files are 0600", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		db, err := sqldb.Open(ctx, sqldb.Options{DataDir: dir, Durable: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "CREATE TABLE perm_check (x INTEGER)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			info, _ := e.Info()
			names = append(names, e.Name())
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", e.Name(), perm)
			}
		}
		for _, want := range []string{"carefront.db", "carefront.db-wal", "carefront.db-shm", "carefront.db.migrate-lock"} {
			if !slices.Contains(names, want) {
				t.Errorf("%s not found among %v", want, names)
			}
		}
		if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
			t.Errorf("data dir has mode %04o, want 0700", info.Mode().Perm())
		}
	})
	t.Run("wider database file narrowed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		os.Mkdir(dir, 0o700)
		os.WriteFile(filepath.Join(dir, "carefront.db"), nil, 0o644)
		os.Chmod(filepath.Join(dir, "carefront.db"), 0o644)
		db, err := sqldb.Open(ctx, sqldb.Options{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if info, _ := os.Stat(filepath.Join(dir, "carefront.db")); info.Mode().Perm() != 0o600 {
			t.Errorf("carefront.db has mode %04o, want 0600", info.Mode().Perm())
		}
	})
}
