package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carefront/internal/demo"
)

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestScanFindsPHIAndPassesCleanMail: a PHI-free notice passes; one with
// a demo person's birth date, name, a result's code or a test message's
// text fails, naming what it holds; an empty sink is an error, not a pass.
func TestScanFindsPHIAndPassesCleanMail(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	bundle, err := demo.Bundle(now)
	if err != nil {
		t.Fatal(err)
	}
	var birth string
	for _, e := range bundle.Entry {
		if strings.Contains(string(e.Resource), `"id":"demo-maria"`) && strings.Contains(string(e.Resource), `"resourceType":"Patient"`) {
			i := strings.Index(string(e.Resource), `"birthDate":"`)
			birth = string(e.Resource)[i+13 : i+23]
		}
	}
	if birth == "" {
		t.Fatal("no birth date for Maria in the demo bundle")
	}
	dir := t.TempDir()
	if _, _, _, err := scan(dir, now); err == nil {
		t.Error("an empty sink passed")
	}
	write(t, dir, "email-1.txt", "You have a new message in your carefront portal / Tiene un mensaje nuevo\n\nSign in to read it. Your code is 482913.")
	write(t, dir, "probe-1.txt", "My feet have been numb since the new dose on Tuesday")
	hits, n, _, err := scan(dir, now)
	if err != nil || len(hits) != 0 || n != 1 {
		t.Fatalf("clean mail: hits %v, %d notices, err %v", hits, n, err)
	}
	for name, text := range map[string]string{
		"birth":   "Born " + birth + ".",
		"name":    "A message from Maria Ortega-Demo",
		"code":    "Your result 4548-4 is ready",
		"message": "They wrote: My feet have been numb since the new dose on Tuesday",
	} {
		write(t, dir, "email-"+name+".txt", text)
		hits, _, _, err := scan(dir, now)
		if err != nil || len(hits) == 0 {
			t.Errorf("%s: no hit (err %v)", name, err)
		}
		os.Remove(filepath.Join(dir, "email-"+name+".txt"))
	}
}
