package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"carefront/internal/sqldb/sqldbtest"
)

func TestAccountsInvite(t *testing.T) {
	env := map[string]string{"CAREFRONT_DATA_DIR": sqldbtest.DataDir(t), "CAREFRONT_BASE_URL": "https://portal.example.org"}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.json"), []byte(`{"resourceType":"Patient","id":"p1","birthDate":"1970-01-02","name":[{"family":"Rivera"}]}`), 0o600)
	if err := run(context.Background(), []string{"carefront", "import", dir}, envOf(env), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"carefront", "accounts", "invite", "--patient", "Patient/p1"}, envOf(env), &out); err != nil {
		t.Fatalf("invite: %v", err)
	}
	m := regexp.MustCompile(`activation code for Patient/p1: ([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})\nlink: https://portal.example.org/activate\?code=([A-Z2-7-]+)\n`).FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] {
		t.Fatalf("invite printed:\n%s", out.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--patient", "Patient/nobody"}, 1, "Patient/nobody is not a patient record"},
		{[]string{"--patient", "Observation/1"}, 2, "give --patient Patient/ID"},
		{nil, 2, "give --patient Patient/ID"},
	} {
		err := run(context.Background(), append([]string{"carefront", "accounts", "invite"}, tc.args...), envOf(env), &bytes.Buffer{})
		if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("invite %v: %v (exit %d), want exit %d with %q", tc.args, err, exitCode(err), tc.code, tc.want)
		}
	}
}

func TestStaffCreate(t *testing.T) {
	env := map[string]string{"CAREFRONT_DATA_DIR": sqldbtest.DataDir(t)}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"carefront", "staff", "create", "--email", "nurse@example.org", "--role", "clinician", "--name", "Ana Nurse"}, envOf(env), &out); err != nil {
		t.Fatalf("staff create: %v", err)
	}
	if !regexp.MustCompile(`staff account nurse@example.org \(clinician\) created\nsetup link: http://127.0.0.1:8080/staff/setup\?code=[A-Z2-7-]{19}\n`).MatchString(out.String()) {
		t.Errorf("printed:\n%s", out.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--email", "nurse@example.org", "--role", "clinician", "--name", "Ana"}, 1, "an account with this email exists"},
		{[]string{"--email", "x@example.org", "--role", "surgeon", "--name", "X"}, 1, "role must be clinician, support, security-officer or admin"},
		{[]string{"--email", "x@example.org", "--name", "X"}, 2, "give --email, --role and --name"},
		{[]string{"--email", "x@example.org", "--role", "clinician"}, 2, "give --email, --role and --name"},
		{[]string{"--email", "x@example.org", "--role", "clinician", "--name", "X", "--practitioner", "Patient/1"}, 2, "give --practitioner as Practitioner/ID"},
		{[]string{"--email", "x@example.org", "--role", "clinician", "--name", "X", "--practitioner", "Practitioner/nobody"}, 2, "Practitioner/nobody is not a record carefront can read"},
	} {
		err := run(context.Background(), append([]string{"carefront", "staff", "create"}, tc.args...), envOf(env), &bytes.Buffer{})
		if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("staff create %v: %v (exit %d)", tc.args, err, exitCode(err))
		}
	}
}
