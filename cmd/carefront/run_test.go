package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"carefront/internal/oauth"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"carefront", "--help"}, envOf(nil), &out); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"serve", "migrate", "audit verify", "keys rotate", "version"} {
		if !strings.Contains(out.String(), c) {
			t.Errorf("--help lacks %q", c)
		}
	}
	for _, cmd := range [][]string{{"serve"}, {"migrate"}, {"audit", "verify"}, {"keys", "rotate"}, {"version"}} {
		out.Reset()
		args := append([]string{"carefront"}, append(cmd, "--help")...)
		if err := run(context.Background(), args, envOf(nil), &out); err != nil {
			t.Errorf("%v = %v", args, err)
		}
		if !strings.Contains(out.String(), "Usage: carefront "+strings.Join(cmd, " ")) {
			t.Errorf("%v printed %q", args, out.String())
		}
	}
	out.Reset()
	run(context.Background(), []string{"carefront", "serve", "--help"}, envOf(nil), &out)
	if !strings.Contains(out.String(), "CAREFRONT_DATABASE_URL_FILE") {
		t.Error("serve --help does not name the environment variables")
	}
}

func TestBadInvocationsExitNonZeroWithOneLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"serve", "--colour"}, nil, 2, "flag provided but not defined: -colour"},
		{"bad config", []string{"--addr", "nowhere"}, nil, 2, "CAREFRONT_ADDR (--addr)"},
		{"bad config env", nil, map[string]string{"CAREFRONT_LOG_LEVEL": "chatty"}, 2, "CAREFRONT_LOG_LEVEL"},
		{"unwritable data dir", []string{"--data-dir", filepath.Join(file, "data")}, nil, 1, "data dir"},
		{"unreachable database", nil, map[string]string{"CAREFRONT_DATABASE_URL": "postgres://u:pw@127.0.0.1:1/x?connect_timeout=2"}, 1, "cannot connect to PostgreSQL"},
		{"verify without key", []string{"audit", "verify", "--data-dir", dir}, nil, 1, "no audit signing key"},
		{"bad office hours", []string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "off", "--data-dir", filepath.Join(t.TempDir(), "data"), "--office-hours", "weekdays 9 to 5"}, nil, 2, "CAREFRONT_OFFICE_HOURS (--office-hours)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"carefront"}, tt.args...), envOf(tt.env), io.Discard)
			if exitCode(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("run(%v) = %v (exit %d), want exit %d and one line with %q", tt.args, err, exitCode(err), tt.code, tt.want)
			}
		})
	}
}

var urlLine = regexp.MustCompile(`"url":"(http://[^"]+)"`)

// serve starts carefront on a free port and returns its URL and a stop
// function that sends the equivalent of SIGTERM and waits for the exit.
func serve(t *testing.T, args []string, env map[string]string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"carefront", "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, args...), envOf(env), out)
	}()
	deadline := time.Now().Add(60 * time.Second) // a start under -race beside other packages' tests can be slow
	for time.Now().Before(deadline) {
		if m := urlLine.FindStringSubmatch(out.String()); m != nil {
			var once sync.Once
			var stopErr error
			stop := func() error {
				once.Do(func() { cancel(); stopErr = <-done })
				return stopErr
			}
			t.Cleanup(func() { stop() })
			return m[1], out, stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not start:\n%s", out)
	return "", nil, nil
}

// dialectEnv is the environment of carefront commands in a test on
// dialect ("sqlite" or "postgres"): a data dir of their own and, on
// PostgreSQL, a schema of their own; extra adds NAME, VALUE pairs.
func dialectEnv(t *testing.T, dialect string, extra ...string) map[string]string {
	t.Helper()
	env := map[string]string{"CAREFRONT_DATA_DIR": sqldbtest.DataDir(t)}
	if dialect == "postgres" {
		for k, v := range postgresEnv(t) {
			env[k] = v
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// postgresEnv gives the binary its own schema in the test database.
func postgresEnv(t *testing.T) map[string]string {
	t.Helper()
	dsn := os.Getenv(sqldbtest.EnvPostgres)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set on CI", sqldbtest.EnvPostgres)
		}
		t.Skipf("%s not set", sqldbtest.EnvPostgres)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE"); admin.Close() })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return map[string]string{"CAREFRONT_DATABASE_URL": dsn + sep + "search_path=" + schema}
}

func TestServeThenVerifyThenTamper(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect)
			dir := env["CAREFRONT_DATA_DIR"]
			base, out, stop := serve(t, nil, env)
			res, err := http.Get(base)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || res.Header.Get("X-Request-Id") == "" {
				t.Fatalf("GET / = %d, headers %v", res.StatusCode, res.Header)
			}
			for _, p := range []string{"/healthz", "/readyz"} {
				if res, err := http.Get(base + p[1:]); err != nil || res.StatusCode != 200 {
					t.Errorf("GET %s = %v, %v", p, res.StatusCode, err)
				}
			}
			if err := stop(); err != nil {
				t.Fatalf("serve after SIGTERM = %v\n%s", err, out)
			}
			if !strings.Contains(out.String(), `"msg":"stopped"`) {
				t.Errorf("no clean stop in the log:\n%s", out)
			}

			var vout bytes.Buffer
			if err := run(context.Background(), []string{"carefront", "audit", "verify"}, envOf(env), &vout); err != nil {
				t.Fatalf("audit verify = %v\n%s", err, vout.String())
			}
			if !strings.Contains(vout.String(), "audit trail verified: 2 records") {
				t.Errorf("audit verify printed %q, want the start and stop records", vout.String())
			}

			// An administrator edits record 1 behind the triggers' back.
			var db *sql.DB
			if dialect == "postgres" {
				db, err = sql.Open("pgx", env["CAREFRONT_DATABASE_URL"])
			} else {
				db, err = sql.Open("sqlite", filepath.Join(dir, "carefront.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stmts := []string{"DROP TRIGGER audit_event_no_update", "UPDATE audit_event SET outcome = '8' WHERE seq = 1"}
			if dialect == "postgres" {
				stmts[0] = "ALTER TABLE audit_event DISABLE TRIGGER USER"
			}
			for _, q := range stmts {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			err = run(context.Background(), []string{"carefront", "audit", "verify"}, envOf(env), io.Discard)
			if exitCode(err) != 1 || err == nil || !strings.Contains(err.Error(), "audit record 1:") {
				t.Errorf("audit verify after tampering = %v (exit %d), want exit 1 naming record 1", err, exitCode(err))
			}
		})
	}
}

func TestKeysRotate(t *testing.T) {
	dir := sqldbtest.DataDir(t)
	env := map[string]string{"CAREFRONT_DATA_DIR": dir}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"carefront", "keys", "rotate"}, envOf(env), &out); err != nil {
		t.Fatalf("keys rotate = %v", err)
	}
	k, err := seal.LoadOrCreate(filepath.Join(dir, seal.KeysetFile))
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyCount() != 2 || !strings.Contains(out.String(), "the keyset now holds 2 keys") {
		t.Errorf("after rotate: %d keys, printed %q", k.KeyCount(), out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"carefront", "audit", "verify"}, envOf(env), &out); err != nil || !strings.Contains(out.String(), "1 records") {
		t.Errorf("audit verify after rotate = %v, %q; want the rotation recorded", err, out.String())
	}
}

// TestKeysRotateTokens: --tokens makes a new ID token signing key, keeps
// the old one published, and is audited; with --audit too it is refused.
func TestKeysRotateTokens(t *testing.T) {
	dir := sqldbtest.DataDir(t)
	env := map[string]string{"CAREFRONT_DATA_DIR": dir}
	ctx := context.Background()
	var out bytes.Buffer
	for range 2 {
		out.Reset()
		if err := run(ctx, []string{"carefront", "keys", "rotate", "--tokens"}, envOf(env), &out); err != nil || !strings.Contains(out.String(), "new ID token signing key ") {
			t.Fatalf("keys rotate --tokens = %v, %q", err, out.String())
		}
	}
	if err := run(ctx, []string{"carefront", "keys", "rotate", "--tokens", "--audit"}, envOf(env), &out); exitCode(err) != 2 {
		t.Errorf("--tokens with --audit: %v", err)
	}
	db, err := sqldb.Open(ctx, sqldb.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k, err := seal.LoadOrCreate(filepath.Join(dir, seal.KeysetFile))
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := (&oauth.Keys{DB: db, Seal: k}).Published(ctx); err != nil || len(pub) != 2 {
		t.Errorf("published after two rotations: %d keys, %v; want both", len(pub), err)
	}
	out.Reset()
	if err := run(ctx, []string{"carefront", "audit", "verify"}, envOf(env), &out); err != nil || !strings.Contains(out.String(), "2 records") {
		t.Errorf("audit verify = %v, %q; want both rotations recorded", err, out.String())
	}
}

// TestFlagsAfterArguments: a command's flags may follow its arguments, and
// everything after "--" is an argument even when it looks like a flag.
func TestFlagsAfterArguments(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		staff     string
		positions []string
	}{
		{[]string{"Billing", "--staff", "a@example.com"}, "a@example.com", []string{"Billing"}},
		{[]string{"--staff", "a@example.com", "Billing"}, "a@example.com", []string{"Billing"}},
		{[]string{"Billing", "--staff=a@example.com", "Extra"}, "a@example.com", []string{"Billing", "Extra"}},
		{[]string{"--", "-Billing", "--staff", "x"}, "", []string{"-Billing", "--staff", "x"}},
		{[]string{"Billing", "--", "--staff"}, "", []string{"Billing", "--staff"}},
	} {
		var staff string
		_, fs, err := parseFlagsArgs("pools add-member", "", 1, tc.args, func(string) string { return "" }, io.Discard,
			func(fs *flag.FlagSet) { fs.StringVar(&staff, "staff", "", "") })
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if staff != tc.staff || !slices.Equal(fs.Args(), tc.positions) {
			t.Errorf("%v: staff %q, arguments %q; want %q, %q", tc.args, staff, fs.Args(), tc.staff, tc.positions)
		}
	}
}
