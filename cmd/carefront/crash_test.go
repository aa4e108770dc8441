package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"carefront/internal/sqldb"
)

// childEnv, when set in a re-run of this test binary, makes it run one
// carefront command (its arguments separated by the unit separator, 0x1f) instead of the tests.
const childEnv = "CAREFRONT_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		if err := run(context.Background(), append([]string{"carefront"}, strings.Split(args, "\x1f")...), os.Getenv, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild runs one carefront command in a process of its own, with env
// and a failpoint armed, and returns how it ended.
func runChild(t *testing.T, env map[string]string, failpoint string, args ...string) (*os.ProcessState, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"), "CAREFRONT_TEST_FAILPOINT="+failpoint)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); cmd.ProcessState == nil {
		t.Fatalf("start %s: %v", os.Args[0], err)
	}
	return cmd.ProcessState, out.String()
}

// A kill at the worst moment of an import (the data and its audit records
// committed, the records not yet in the hash chain) loses no audit record:
// they were staged in the data's own transaction, and the next start
// chains them. Before, re-import saw "unchanged" and never wrote one.
func TestImportKilledAfterCommitStillAudits(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect)
			src := t.TempDir()
			os.WriteFile(filepath.Join(src, "p.json"), []byte(`{"resourceType":"Bundle","type":"transaction","entry":[
				{"fullUrl":"urn:uuid:6b0f7c2e-0000-4000-8000-0000000000c1","resource":{"resourceType":"Patient","name":[{"family":"Crash"}]},"request":{"method":"POST","url":"Patient"}},
				{"resource":{"resourceType":"Observation","id":"crash-obs","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"urn:uuid:6b0f7c2e-0000-4000-8000-0000000000c1"}},"request":{"method":"PUT","url":"Observation/crash-obs"}}]}`), 0o600)

			st, out := runChild(t, env, "import-after-commit", "import", src)
			if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("import was not killed at the failpoint: %v\n%s", st, out)
			}
			// The data is there.
			var got bytes.Buffer
			if err := run(context.Background(), []string{"carefront", "fhir", "read", "Observation/crash-obs"}, envOf(env), &got); err != nil {
				t.Fatalf("fhir read after the kill: %v", err)
			}
			// Importing again finds it unchanged; its start chains what the
			// killed import staged.
			got.Reset()
			if err := run(context.Background(), []string{"carefront", "import", src}, envOf(env), &got); err != nil {
				t.Fatalf("re-import: %v\n%s", err, got.String())
			}
			if !strings.Contains(got.String(), "Observation") || !strings.Contains(got.String(), "0 failed") {
				t.Errorf("re-import summary:\n%s", got.String())
			}
			got.Reset()
			if err := run(context.Background(), []string{"carefront", "audit", "verify"}, envOf(env), &got); err != nil {
				t.Fatalf("audit verify: %v\n%s", err, got.String())
			}
			if n := importRecordsFor(t, env, "Observation/crash-obs"); n != 1 {
				t.Errorf("%d Import records name Observation/crash-obs, want 1", n)
			}
		})
	}
}

// importRecordsFor counts the chained Import records naming ref.
func importRecordsFor(t *testing.T, env map[string]string, ref string) int {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Options{URL: env["CAREFRONT_DATABASE_URL"], DataDir: env["CAREFRONT_DATA_DIR"]})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	text := "CAST(event AS TEXT)"
	if db.Dialect == sqldb.Postgres {
		text = "convert_from(event, 'UTF8')"
	}
	err = db.Read(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM audit_event WHERE type_code = ? AND "+text+" LIKE ?",
			"http://dicom.nema.org/resources/ontology/DCM|110107", "%\""+ref+"\"%").Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
