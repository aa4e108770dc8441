package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// The operator's tamper-evidence tools through the binary: a witness file
// kept outside the database catches records removed with their checkpoints,
// and an audit key rotation keeps what the old key signed verifiable.
func TestAuditWitnessAndKeyRotation(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect, "CAREFRONT_AUDIT_CHECKPOINT_EVERY", "2")
			dir := env["CAREFRONT_DATA_DIR"]
			ctx := context.Background()
			must := func(args ...string) string {
				t.Helper()
				var out bytes.Buffer
				if err := run(ctx, append([]string{"carefront"}, args...), envOf(env), &out); err != nil {
					t.Fatalf("%v = %v\n%s", args, err, out.String())
				}
				return out.String()
			}
			for range 3 { // each rotation writes a record, signed at close
				must("keys", "rotate")
			}
			out := must("keys", "rotate", "--audit")
			if !strings.Contains(out, "the keyring now holds 2 keys") || !strings.Contains(out, "public key to give your auditors") {
				t.Errorf("keys rotate --audit printed:\n%s", out)
			}
			must("keys", "rotate") // signed by the new key
			witness := filepath.Join(t.TempDir(), "witness.jsonl")
			if out := must("audit", "witness", "export", witness); !strings.Contains(out, "new checkpoints appended") {
				t.Errorf("witness export printed %q", out)
			}
			out = must("audit", "verify", "--witness", witness)
			for _, want := range []string{"audit trail verified: 5 records", "record MACs: 5 checked", "unsigned tail: none", "witness: all"} {
				if !strings.Contains(out, want) {
					t.Errorf("audit verify printed:\n%s\nwant %q", out, want)
				}
			}
			// A database administrator removes the last records and the
			// checkpoints covering them.
			var db *sql.DB
			var err error
			if dialect == "postgres" {
				db, err = sql.Open("pgx", env["CAREFRONT_DATABASE_URL"])
			} else {
				db, err = sql.Open("sqlite", filepath.Join(dir, "carefront.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stmts := []string{"DROP TRIGGER audit_event_no_delete", "DROP TRIGGER audit_checkpoint_no_delete",
				"DELETE FROM audit_event WHERE seq > 4", "DELETE FROM audit_checkpoint WHERE seq > 4"}
			if dialect == "postgres" {
				// As the tables' owner; a superuser could as well SET
				// session_replication_role = replica.
				stmts = []string{"ALTER TABLE audit_event DISABLE TRIGGER USER", "ALTER TABLE audit_checkpoint DISABLE TRIGGER USER",
					"DELETE FROM audit_event WHERE seq > 4", "DELETE FROM audit_checkpoint WHERE seq > 4"}
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range stmts {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			conn.Close()
			must("audit", "verify") // without the witness, nothing shows
			var vout bytes.Buffer
			err = run(ctx, []string{"carefront", "audit", "verify", "--witness", witness}, envOf(env), &vout)
			if exitCode(err) != 1 || !strings.Contains(err.Error(), "audit record 5: the witness holds a signed checkpoint here that the database lacks") {
				t.Errorf("audit verify --witness after truncation = %v (exit %d)", err, exitCode(err))
			}
		})
	}
}
