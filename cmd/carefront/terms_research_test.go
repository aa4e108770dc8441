package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"carefront/internal/sqldb/sqldbtest"
)

// TestTermsPublishAndResearchAdd: the clinic publishes terms in English
// and Spanish and adds a study; missing texts, a version published
// twice, a missing title or an unreadable file are refused with one line
// and exit 2.
func TestTermsPublishAndResearchAdd(t *testing.T) {
	env := map[string]string{"CAREFRONT_DATA_DIR": sqldbtest.DataDir(t)}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	en, es, desc := write("en.txt", "Be kind."), write("es.txt", "Sea amable."), write("study.txt", "A yearly survey.")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"carefront", "terms", "publish", "--version", "2026-11", "--es", es, en}, envOf(env), &out); err != nil {
		t.Fatalf("terms publish: %v", err)
	}
	if !strings.Contains(out.String(), "terms 2026-11 published") {
		t.Errorf("printed %q", out.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"terms", "publish", "--version", "2026-11", "--es", es, en}, "already published"},
		{[]string{"terms", "publish", "--version", "2026-12", en}, "give the Spanish text with --es FILE"},
		{[]string{"terms", "publish", "--version", "2026-12", "--es", es, filepath.Join(dir, "nope.txt")}, "cannot read"},
		{[]string{"terms", "publish", "--es", es, en}, "give a version"},
		{[]string{"research", "add", "--description-file", desc}, "give a title"},
		{[]string{"research", "add", "--title", "Survey"}, "give the file"},
	} {
		err := run(context.Background(), append([]string{"carefront"}, tc.args...), envOf(env), &bytes.Buffer{})
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v (exit %d), want exit 2 with %q", tc.args, err, exitCode(err), tc.want)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"carefront", "research", "add", "--title", "Diabetes in our community", "--description-file", desc}, envOf(env), &out); err != nil {
		t.Fatalf("research add: %v", err)
	}
	if !strings.Contains(out.String(), "added: Diabetes in our community") {
		t.Errorf("printed %q", out.String())
	}
}
