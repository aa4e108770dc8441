package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestProxiesGrantListRevoke: the help desk's caregiver grants, on both
// databases: a grant until the end of a day in the clinic's time zone,
// listed, revoked; bad input refused with one line and exit 2, nothing
// written; the audit trail still verifies.
func TestProxiesGrantListRevoke(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect, "CAREFRONT_CLINIC_TIME_ZONE", "America/Chicago")
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "p.json"), []byte(`{"resourceType":"Patient","id":"sam","birthDate":"2011-08-18"}`), 0o600)
			ctx := context.Background()
			if err := run(ctx, []string{"carefront", "import", dir}, envOf(env), &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			cli := func(args ...string) (string, error) {
				var out bytes.Buffer
				err := run(ctx, append([]string{"carefront", "proxies"}, args...), envOf(env), &out)
				return out.String(), err
			}
			next := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"grant", "--patient", "Patient/nobody", "--caregiver-email", "dana@example.com", "--until", next}, "Patient/nobody is not a patient record"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "dana at example", "--until", next}, "is not an email address"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "Dana <dana@example.com>", "--until", next}, "is not an email address"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "dana@example.com", "--until", "2020-01-01"}, "must be in the future"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "dana@example.com", "--until", "2099-01-01"}, "within 10 years"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "dana@example.com", "--until", "next year"}, "YYYY-MM-DD"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "dana@example.com", "--until", next, "--preset", "everything"}, "preset must be one of"},
				{[]string{"grant", "--patient", "sam", "--caregiver-email", "dana@example.com", "--until", next}, "give --patient Patient/ID"},
				{[]string{"grant", "--patient", "Patient/sam", "--caregiver-email", "dana@example.com", "--until", next, "--never", "mental-health,politics"}, `--never "politics" is not one of mental-health, substance-use, hiv, sexual-health`},
				{[]string{"revoke", "grant-nope"}, `no grant in force has the id "grant-nope"`},
			} {
				_, err := cli(tc.args...)
				if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("proxies %v: %v (exit %d), want exit 2 with %q", tc.args, err, exitCode(err), tc.want)
				}
			}
			if out, err := cli("list", "--patient", "Patient/sam"); err != nil || !strings.Contains(out, "no caregiver grants") {
				t.Fatalf("after bad input, list: %q %v", out, err)
			}

			out, err := cli("grant", "--patient", "Patient/sam", "--caregiver-email", "Dana@Example.com", "--preset", "medications-visits", "--until", next)
			if err != nil {
				t.Fatal(err)
			}
			// Access ends at midnight after that day, in Chicago.
			chicago, _ := time.LoadLocation("America/Chicago")
			day, _ := time.ParseInLocation("2006-01-02", next, chicago)
			end := day.AddDate(0, 0, 1)
			m := regexp.MustCompile(`^grant (grant-[0-9a-f]{24}): dana@example.com may see Patient/sam's record \(medications-visits\) until ` +
				regexp.QuoteMeta(end.Format("2006-01-02 15:04 MST")) + ` \(no account yet`).FindStringSubmatch(out)
			if m == nil || !strings.Contains(out, "00:00 C") {
				t.Fatalf("grant printed %q", out)
			}
			out, _ = cli("list", "--patient", "Patient/sam")
			if !strings.Contains(out, m[1]+"\tdana@example.com\tmedications-visits\tuntil "+end.UTC().Format("2006-01-02 15:04 MST")+"\tin force") {
				t.Errorf("list: %q", out)
			}
			if out, err := cli("revoke", m[1]); err != nil || !strings.Contains(out, "revoked for Patient/sam") {
				t.Fatalf("revoke: %q %v", out, err)
			}
			if _, err := cli("revoke", m[1]); exitCode(err) != 2 {
				t.Errorf("second revoke: %v", err)
			}
			if out, _ := cli("list", "--patient", "Patient/sam"); !strings.Contains(out, "\trevoked ") {
				t.Errorf("list after revoke: %q", out)
			}
			// A parent's grant past Sam's 18th birthday ends at it, and
			// never shows what --never names.
			if _, err := cli("grant", "--patient", "Patient/sam", "--caregiver-email", "rob@example.com", "--until", "2029-12-31", "--never", "mental-health, sexual-health"); err != nil {
				t.Fatal(err)
			}
			if out, _ := cli("list", "--patient", "Patient/sam"); !strings.Contains(out, "\trob@example.com\tfull, never mental-health, never sexual-health\tuntil 2029-08-18 00:00 UTC (the patient comes of age)\tin force") {
				t.Errorf("list of a grant past the 18th birthday: %q", out)
			}
			var vout bytes.Buffer
			if err := run(ctx, []string{"carefront", "audit", "verify"}, envOf(env), &vout); err != nil {
				t.Fatalf("audit verify: %v\n%s", err, vout.String())
			}
		})
	}
}
