// Package sqldb opens carefront's database, embedded SQLite by default or
// PostgreSQL for production, applies the embedded migrations of its dialect,
// and runs transactions with placeholders written once for both.
//
// Queries are written with ? placeholders; on PostgreSQL they are rebound to
// $1, $2, ... Callers never build SQL from values: every value is a parameter.
package sqldb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL database in use.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// Options say which database to open and how.
type Options struct {
	// URL is a postgres:// URL; empty opens SQLite in DataDir.
	URL string
	// DataDir holds carefront.db for SQLite. It is created if absent.
	DataDir string
	// Durable makes Write wait until its commit is on disk, and makes Flush
	// do so for WriteNoWait. Without it commits may be lost on power loss.
	Durable bool
	// Schema, for PostgreSQL only, is put first on the search_path; the
	// shared store tests give each test its own.
	Schema string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DB is an open database. SQLite gets one writer connection (SQLite allows a
// single writer; queuing in Go beats busy-waiting in SQLite) and a pool of
// read-only connections; PostgreSQL uses one pool for both.
type DB struct {
	Dialect Dialect
	Now     func() time.Time

	write *sql.DB
	read  *sql.DB
	// async, on a durable PostgreSQL database, is a small pool whose
	// commits do not wait for the disk (synchronous_commit=off), for
	// WriteNoWait: one round trip less than setting it per transaction.
	async   *sql.DB
	goose   *goose.Provider
	durable bool
	// walPath is SQLite's write-ahead log, which Flush syncs to disk.
	walPath string
	// lockPath, for SQLite, is the file whose lock lets one process at a
	// time migrate (goose's own locker is PostgreSQL-only).
	lockPath string

	// flushMu serializes flushes; walFile is the open WAL, reopened when
	// SQLite replaces the file. Both are guarded by flushMu, as is
	// flushCovered: the last ticket a finished sync covered. flushTickets
	// counts the Flush calls made, each after its caller's commits.
	flushMu      sync.Mutex
	walFile      *os.File
	flushID      int
	flushTickets atomic.Uint64
	flushCovered uint64
	// flushErr is the first failed sync: after one, Linux may have
	// dropped the pages it could not write and a later sync would
	// succeed without them, so every later Flush fails too.
	flushErr error

	// reads and writes, on SQLite, cache the reader and writer pools'
	// prepared statements.
	reads, writes *stmtCache

	// listen, on PostgreSQL, is how Listen connects (a connection of
	// its own, outside the pools); channelPre tells this database's
	// channels from another schema's (channels are per database).
	listen     *pgx.ConnConfig
	channelPre string
}

// Open opens and pings the database. It does not migrate; call Migrate.
func Open(ctx context.Context, o Options) (*DB, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if o.URL != "" {
		return openPostgres(ctx, o, now)
	}
	return openSQLite(ctx, o, now)
}

func openSQLite(ctx context.Context, o Options, now func() time.Time) (*DB, error) {
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", o.DataDir, err)
	}
	if strings.ContainsAny(dir, "?#") {
		return nil, fmt.Errorf("data dir %s: the path must not contain ? or #", dir)
	}
	if err := EnsureWritableDir(dir); err != nil {
		return nil, err
	}
	// Commits are written to the WAL without an fsync (synchronous=NORMAL);
	// durability comes from Flush, which fdatasyncs the WAL after a commit.
	// That equals synchronous=FULL for Write, and lets the audit writer
	// overlap one batch's sync with the next batch's commit.
	dbPath := filepath.Join(dir, "carefront.db")
	if err := privateFiles(dbPath, dbPath+"-wal", dbPath+"-shm"); err != nil {
		return nil, err
	}
	base := "file:" + dbPath +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	write, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open SQLite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	// Two processes opening a new database at once can race to switch it
	// to WAL, and SQLite answers the loser SQLITE_BUSY at once, without
	// its busy timeout: try again for as long as the timeout would wait.
	for wait, deadline := 10*time.Millisecond, time.Now().Add(10*time.Second); ; wait = min(2*wait, time.Second) {
		err = write.PingContext(ctx)
		if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			break
		}
		time.Sleep(wait) // the failed connection is not kept: the next ping opens anew
	}
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open SQLite database in %s: %w", dir, err)
	}
	read, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open SQLite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	db := &DB{Dialect: SQLite, Now: now, write: write, read: read, durable: o.Durable, walPath: dbPath + "-wal", lockPath: dbPath + ".migrate-lock",
		reads: newStmtCache(read), writes: newStmtCache(write)}
	return db, db.newProvider()
}

// EnsureWritableDir creates dir (mode 0700) if needed, refuses it when its
// group or others have any access (it holds the database, keys and audit
// signing key), and proves it writable.
func EnsureWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: cannot create it: %w; set --data-dir (CAREFRONT_DATA_DIR) to a writable folder", dir, unwrapPath(err))
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, unwrapPath(err))
	}
	if !info.IsDir() {
		return fmt.Errorf("data dir %s: not a folder; set --data-dir (CAREFRONT_DATA_DIR) to a folder", dir)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("data dir %s: open to other users (mode %04o); run chmod 700 %s", dir, perm, dir)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s: not writable: %w; set --data-dir (CAREFRONT_DATA_DIR) to a writable folder", dir, unwrapPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// privateFiles makes the database file mode 0600 before SQLite opens it,
// creating it empty when it does not exist: SQLite creates its files 0644
// less the umask, and gives the -wal and -shm files the database file's
// mode. Files left wider by an older version are narrowed.
func privateFiles(db string, others ...string) error {
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database %s: %w", db, unwrapPath(err))
	}
	f.Close()
	for _, p := range append([]string{db}, others...) {
		info, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database %s: %w", p, unwrapPath(err))
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("database %s: %w; run chmod 600 %s", p, unwrapPath(err), p)
			}
		}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func openPostgres(ctx context.Context, o Options, now func() time.Time) (*DB, error) {
	pc, err := pgx.ParseConfig(o.URL)
	if err != nil {
		// pgx's message may quote the URL, password included: keep ours.
		return nil, errors.New("database URL: not a valid PostgreSQL URL; use postgres://user@host:5432/dbname")
	}
	if pc.ConnectTimeout == 0 || pc.ConnectTimeout > 10*time.Second {
		pc.ConnectTimeout = 5 * time.Second
	}
	if !o.Durable {
		pc.RuntimeParams["synchronous_commit"] = "off"
	}
	if o.Schema != "" {
		pc.RuntimeParams["search_path"] = o.Schema
	}
	pool := stdlib.OpenDB(*pc)
	pool.SetMaxOpenConns(max(8, 4*runtime.GOMAXPROCS(0)))
	pool.SetMaxIdleConns(max(8, 4*runtime.GOMAXPROCS(0)))
	pool.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot connect to PostgreSQL at %s:%d (database %q): %s", pc.Host, pc.Port, pc.Database, oneLine(err))
	}
	// Readers get connections on which every statement is read-only, so
	// Read and ReadOne cannot write even by mistake.
	rc := pc.Copy()
	rc.RuntimeParams["default_transaction_read_only"] = "on"
	read := stdlib.OpenDB(*rc)
	read.SetMaxOpenConns(max(8, 4*runtime.GOMAXPROCS(0)))
	read.SetMaxIdleConns(max(8, 4*runtime.GOMAXPROCS(0)))
	read.SetConnMaxIdleTime(5 * time.Minute)
	var async *sql.DB
	if o.Durable {
		ac := pc.Copy()
		ac.RuntimeParams["synchronous_commit"] = "off"
		async = stdlib.OpenDB(*ac)
		async.SetMaxOpenConns(4)
		async.SetMaxIdleConns(4)
		async.SetConnMaxIdleTime(5 * time.Minute)
	}
	var b [2]byte
	rand.Read(b[:])
	db := &DB{Dialect: Postgres, Now: now, write: pool, read: read, async: async, durable: o.Durable, flushID: int(b[0])<<8 | int(b[1]),
		listen: pc.Copy(), channelPre: "carefront_" + o.Schema + "_"}
	return db, db.newProvider()
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func (db *DB) newProvider() error {
	sub, err := fs.Sub(migrationFS, "migrations/"+string(db.Dialect))
	if err != nil {
		return err
	}
	var opts []goose.ProviderOption
	dialect := goose.DialectSQLite3
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// Several replicas may start at once: one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(2, 150))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.write, sub, opts...)
	if err != nil {
		db.Close()
		return fmt.Errorf("load migrations: %w", err)
	}
	db.goose = p
	return nil
}

// Migrate applies every pending migration.
func (db *DB) Migrate(ctx context.Context) ([]*goose.MigrationResult, error) {
	if db.lockPath != "" {
		// Two processes on one SQLite file (serve and import, say) would
		// both see a migration pending and the second would fail on it.
		f, err := os.OpenFile(db.lockPath, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("migrate: lock file: %w", err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
		defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	res, err := db.goose.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate %s database: %w", db.Dialect, err)
	}
	return res, nil
}

// MigrationStatus lists every migration and whether it is applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]*goose.MigrationStatus, error) {
	return db.goose.Status(ctx)
}

// Ready reports an error unless the database answers and every migration
// this binary knows is applied.
func (db *DB) Ready(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	pending, err := db.goose.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration state: %w", err)
	}
	if pending {
		return errors.New("migrations pending")
	}
	return nil
}

// Close closes every connection.
func (db *DB) Close() error {
	db.flushMu.Lock()
	if db.walFile != nil {
		db.walFile.Close()
		db.walFile = nil
	}
	db.flushMu.Unlock()
	if db.reads != nil {
		db.reads.close()
		db.writes.close()
	}
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	if db.async != nil {
		err = errors.Join(err, db.async.Close())
	}
	return err
}

// Write runs fn in a read-write transaction and commits it when fn returns
// nil; when the database is durable it returns only once the commit is on
// disk. On SQLite the transaction takes the write lock at BEGIN
// (IMMEDIATE), so it never fails later on a lock upgrade.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	if db.Dialect == Postgres {
		return db.run(ctx, db.write, nil, fn) // synchronous_commit does it
	}
	if err := db.runWith(ctx, db.write, nil, db.writes, fn); err != nil {
		return err
	}
	return db.Flush(ctx)
}

// WriteNoWait is Write without waiting for the disk: the commit is visible
// at once but may be lost on power loss until Flush returns. Its caller must
// call Flush before telling anyone the write happened.
func (db *DB) WriteNoWait(ctx context.Context, fn func(*Tx) error) error {
	if db.async != nil {
		return db.run(ctx, db.async, nil, fn)
	}
	return db.runWith(ctx, db.write, nil, db.writes, fn)
}

// WriteOne runs fn, which must run a single write statement, as its own
// transaction: one round trip on PostgreSQL instead of three (begin,
// statement, commit), and no BEGIN or COMMIT to run on SQLite. Like Write,
// it returns once the change is on disk when the database is durable.
func (db *DB) WriteOne(ctx context.Context, fn func(*Tx) error) error {
	if err := fn(&Tx{tx: db.write, dialect: db.Dialect, cache: db.writes}); err != nil {
		return err
	}
	if db.Dialect == Postgres {
		return nil // synchronous_commit does it
	}
	return db.Flush(ctx)
}

// WriteOneNoWait is WriteOne without waiting for the disk, with
// WriteNoWait's duty: Flush before telling anyone the write happened.
func (db *DB) WriteOneNoWait(ctx context.Context, fn func(*Tx) error) error {
	pool := db.write
	if db.async != nil {
		pool = db.async
	}
	return fn(&Tx{tx: pool, dialect: db.Dialect, cache: db.writes})
}

// IsUniqueViolation reports whether err is a write refused by a primary
// key or unique constraint, on either database.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// Flush makes every commit that returned before the call durable. On SQLite
// it fdatasyncs the write-ahead log; on PostgreSQL it commits a one-row
// write synchronously, which flushes the (linear) WAL past every earlier
// commit. It is a no-op when the database is not durable.
func (db *DB) Flush(ctx context.Context) error {
	if !db.durable {
		return nil
	}
	if db.Dialect == Postgres {
		_, err := db.write.ExecContext(ctx,
			"INSERT INTO sqldb_flush (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = sqldb_flush.n + 1", db.flushID)
		if err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		return nil
	}
	// Group flush: a sync that began after this call covers it, so the
	// callers that queue while one sync runs share the next.
	ticket := db.flushTickets.Add(1)
	db.flushMu.Lock()
	defer db.flushMu.Unlock()
	if db.flushErr != nil {
		return db.flushErr
	}
	if db.flushCovered >= ticket {
		return nil
	}
	cover := db.flushTickets.Load() // every call so far came after its commits
	f, err := db.wal()
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := datasync(f); err != nil {
		db.flushErr = fmt.Errorf("flush: sync %s: %w (writes may be lost; restart carefront)", db.walPath, err)
		return db.flushErr
	}
	db.flushCovered = cover
	return nil
}

// wal returns the open WAL file, reopening it when SQLite has replaced the
// file (it deletes the WAL when the last connection closes), so a sync never
// goes to an unlinked file. flushMu must be held.
func (db *DB) wal() (*os.File, error) {
	cur, err := os.Stat(db.walPath)
	if err != nil {
		return nil, err
	}
	if db.walFile != nil {
		if fi, err := db.walFile.Stat(); err == nil && os.SameFile(fi, cur) {
			return db.walFile, nil
		}
		db.walFile.Close()
		db.walFile = nil
	}
	f, err := os.Open(db.walPath)
	if err != nil {
		return nil, err
	}
	db.walFile = f
	return f, nil
}

// Read runs fn in a read-only transaction.
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	return db.runWith(ctx, db.read, &sql.TxOptions{ReadOnly: db.Dialect == Postgres}, db.reads, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(*Tx) error) (err error) {
	return db.runWith(ctx, pool, opts, nil, fn)
}

func (db *DB) runWith(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, cache *stmtCache, fn func(*Tx) error) (err error) {
	if cache != nil {
		// After the transaction has given its connection back.
		defer cache.prepareWanted(ctx)
	}
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := fn(&Tx{tx: tx, dialect: db.Dialect, cache: cache}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// RawWriter returns the underlying write pool. It exists for operator tools
// and tests that must act as a database administrator would (for example to
// prove that tampering is detected); features use Write and Read.
func (db *DB) RawWriter() *sql.DB { return db.write }

// Tx is a transaction whose queries use ? placeholders on every dialect.
// (From ReadOne it is the reader pool itself, for a single statement.)
type Tx struct {
	tx      querier
	dialect Dialect
	cache   *stmtCache // prepared statements of reads, when the pool has them
}

// SQL returns the database/sql transaction under t, for libraries that
// must join it (the job queue enqueues in the caller's transaction). It is
// nil for ReadOne's single statements, which have none.
func (t *Tx) SQL() *sql.Tx {
	tx, _ := t.tx.(*sql.Tx)
	return tx
}

// querier is what *sql.Tx and *sql.DB have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ReadOne runs fn, which must run a single read statement, outside any
// transaction: one round trip on PostgreSQL instead of three (begin,
// query, commit). A single statement sees one consistent snapshot anyway.
func (db *DB) ReadOne(ctx context.Context, fn func(*Tx) error) error {
	return fn(&Tx{tx: db.read, dialect: db.Dialect, cache: db.reads})
}

// Dialect reports the database in use, for the rare query that differs.
func (t *Tx) Dialect() Dialect { return t.dialect }

// Exec runs a statement.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.cache != nil {
		return t.cache.exec(ctx, t.tx, Rebind(t.dialect, query), args...)
	}
	return t.tx.ExecContext(ctx, Rebind(t.dialect, query), args...)
}

// Query runs a query returning rows.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.cache != nil {
		return t.cache.query(ctx, t.tx, Rebind(t.dialect, query), args...)
	}
	return t.tx.QueryContext(ctx, Rebind(t.dialect, query), args...)
}

// QueryRow runs a query returning at most one row.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if t.cache != nil {
		return t.cache.queryRow(ctx, t.tx, Rebind(t.dialect, query), args...)
	}
	return t.tx.QueryRowContext(ctx, Rebind(t.dialect, query), args...)
}

// Rebind rewrites ? placeholders as $1, $2, ... for PostgreSQL. A ? inside a
// quoted string literal or identifier is left alone.
func Rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString(fmt.Sprintf("$%d", n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
