package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestPoolsAddMemberList: the clinic sets up messaging pools from the
// command line; bad input exits 2 with one line saying what is wrong, and
// adds nothing.
func TestPoolsAddMemberList(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect)
			ctx := context.Background()
			cli := func(args ...string) (string, error) {
				var out bytes.Buffer
				err := run(ctx, append([]string{"carefront"}, args...), envOf(env), &out)
				return out.String(), err
			}
			if _, err := cli("staff", "create", "--email", "rivera@clinic.example", "--role", "clinician", "--name", "Dr. Ana Rivera"); err != nil {
				t.Fatal(err)
			}
			if _, err := cli("staff", "create", "--email", "officer@clinic.example", "--role", "security-officer", "--name", "Sam Officer"); err != nil {
				t.Fatal(err)
			}
			if out, err := cli("pools", "list"); err != nil || !strings.Contains(out, "no pools yet") {
				t.Fatalf("list before any pool: %q %v", out, err)
			}
			out, err := cli("pools", "add", "--name", "Dr. Rivera's team", "--response-time", "2d", "--practitioner", "Practitioner/rivera")
			if err != nil || !strings.HasPrefix(out, "pool id: ") {
				t.Fatalf("pools add: %q %v", out, err)
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"pools", "add", "--name", "Billing", "--response-time", "2w"}, "like 2d, 36h or 90m"},
				{[]string{"pools", "add", "--name", "Billing", "--response-time", "20d"}, "between 1 hour and 14 days"},
				{[]string{"pools", "add", "--name", "", "--response-time", "2d"}, "give the pool a name"},
				{[]string{"pools", "add", "--name", "dr. rivera's TEAM", "--response-time", "2d"}, "exists already"},
				{[]string{"pools", "add-member", "No such pool", "--staff", "rivera@clinic.example"}, `no pool has the id or name "No such pool"`},
				{[]string{"pools", "add-member", "Dr. Rivera's team", "--staff", "nobody@clinic.example"}, "no staff account has the address"},
				{[]string{"pools", "add-member", "Dr. Rivera's team", "--staff", "officer@clinic.example"}, "only they answer patients' messages"},
			} {
				_, err := cli(tc.args...)
				if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%v: %v (exit %d), want exit 2 with %q", tc.args, err, exitCode(err), tc.want)
				}
			}
			if _, err := cli("pools", "add-member", "dr. rivera's team", "--staff", "Rivera@clinic.example"); err != nil {
				t.Fatal(err)
			}
			out, err = cli("pools", "list")
			if err != nil {
				t.Fatal(err)
			}
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 ||
				!strings.Contains(lines[0], "\tDr. Rivera's team\t2d\tpatients of Practitioner/rivera\t1 members") {
				t.Errorf("pools list = %q, want the one pool with its member", out)
			}
		})
	}
}
