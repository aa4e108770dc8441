package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestClientsAddListDisable: a clinic registers apps with one command
// each, lists them and stops one; bad registrations are refused with one
// line and exit 2.
func TestClientsAddListDisable(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect)
			ctx := context.Background()
			cli := func(args ...string) (string, error) {
				var out bytes.Buffer
				err := run(ctx, append([]string{"carefront", "clients"}, args...), envOf(env), &out)
				return out.String(), err
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"add", "--redirect-uri", "https://app.example/cb"}, "give the app a name"},
				{[]string{"add", "--name", "Diary"}, "at least one redirect URI"},
				{[]string{"add", "--name", "Diary", "--redirect-uri", "https://app.example/cb#frag"}, "must not have a fragment"},
				{[]string{"add", "--name", "Diary", "--redirect-uri", "https://app.example/cb", "--public", "--secret"}, "give one of --public, --secret"},
				{[]string{"add", "--name", "Diary", "--redirect-uri", "https://app.example/cb", "--jwks", "/nonexistent.json"}, "cannot read --jwks"},
				{[]string{"disable", "nope"}, `no active app has the client id "nope"`},
			} {
				_, err := cli(tc.args...)
				if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("clients %v: %v (exit %d), want exit 2 with %q", tc.args, err, exitCode(err), tc.want)
				}
			}
			if out, _ := cli("list"); !strings.Contains(out, "no apps registered") {
				t.Fatalf("after bad input: %q", out)
			}
			out, err := cli("add", "--name", "Health Diary", "--redirect-uri", "https://diary.example/cb", "--redirect-uri", "http://127.0.0.1:5173/cb", "--origin", "https://diary.example")
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`^client id: ([0-9a-f]{32})\n$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("add printed %q", out)
			}
			out, err = cli("add", "--name", "Clinic Companion", "--secret", "--redirect-uri", "https://companion.example/cb")
			if err != nil || !regexp.MustCompile(`^client id: [0-9a-f]{32}\nclient secret: [A-Za-z0-9_-]{43}\n`).MatchString(out) {
				t.Fatalf("add --secret printed %q, %v", out, err)
			}
			out, _ = cli("list")
			if !strings.Contains(out, m[1]+"\tHealth Diary\tpublic\treviewed\tactive\thttps://diary.example/cb http://127.0.0.1:5173/cb") || !strings.Contains(out, "\tClinic Companion\tsecret\treviewed\tactive\t") {
				t.Errorf("list: %q", out)
			}
			if out, err := cli("disable", m[1]); err != nil || !strings.Contains(out, "disabled") {
				t.Fatalf("disable: %q %v", out, err)
			}
			if out, _ := cli("list"); !strings.Contains(out, m[1]+"\tHealth Diary\tpublic\treviewed\tdisabled ") {
				t.Errorf("list after disable: %q", out)
			}
			if _, err := cli("disable", m[1]); exitCode(err) != 2 {
				t.Errorf("second disable: %v", err)
			}
			var vout bytes.Buffer
			if err := run(ctx, []string{"carefront", "audit", "verify"}, envOf(env), &vout); err != nil {
				t.Fatalf("audit verify: %v\n%s", err, vout.String())
			}
		})
	}
}
