// Command outboxscan is the last step of make test: it reads every
// notification the test suite delivered (Go packages and browser tests
// write a copy of each to CAREFRONT_TEST_OUTBOX_DIR, package notify) and
// fails if any holds PHI of the demo population or a test message's text.
//
// What it looks for:
//   - names of the demo people and clinicians (given and family names,
//     whole words), their record numbers and birth dates (as ISO, US and
//     written-out dates);
//   - the codes and names of their conditions, results, medicines,
//     allergies, immunizations and procedures, and the reasons of their
//     visits. All-digit codes shorter than 7 digits are left out: a
//     6-digit sign-in code would match one by chance; their names are
//     looked for instead;
//   - the subjects and texts of the messages sent during the tests
//     (probe files, notify.Probe): the first 40 characters and every line
//     of 16 characters or more.
//
// It fails, too, when there is nothing to scan: no notification or no
// probe means the sink is not wired, and a scan of nothing proves nothing.
//
//	go run ./tools/outboxscan DIR
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"carefront/internal/demo"
)

type needle struct {
	text, why string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: outboxscan DIR")
		os.Exit(2)
	}
	hits, notices, needles, err := scan(os.Args[1], time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "outboxscan:", err)
		os.Exit(1)
	}
	for _, h := range hits {
		fmt.Fprintln(os.Stderr, "outboxscan: PHI in a notification:", h)
	}
	if len(hits) > 0 {
		os.Exit(1)
	}
	fmt.Printf("outboxscan: %d notifications scanned for %d needles: no PHI\n", notices, needles)
}

// scan reads dir and reports the hits.
func scan(dir string, now time.Time) (hits []string, notices, needles int, err error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, 0, err
	}
	var ns []needle
	for _, day := range []time.Time{now, now.AddDate(0, 0, -1)} { // a run may cross midnight
		more, err := demoNeedles(day)
		if err != nil {
			return nil, 0, 0, err
		}
		ns = append(ns, more...)
	}
	var texts []string
	var names []string
	probes := 0
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, 0, 0, err
		}
		if strings.HasPrefix(f.Name(), "probe-") {
			probes++
			ns = append(ns, probeNeedles(string(b))...)
			continue
		}
		texts, names = append(texts, string(b)), append(names, f.Name())
	}
	if len(texts) == 0 || probes == 0 {
		return nil, 0, 0, fmt.Errorf("%s holds %d notifications and %d probes: the test sink is not wired (CAREFRONT_TEST_OUTBOX_DIR)", dir, len(texts), probes)
	}
	seen := map[string]bool{}
	for i, t := range texts {
		for _, n := range ns {
			if contains(t, n.text) && !seen[names[i]+n.text] {
				seen[names[i]+n.text] = true
				hits = append(hits, fmt.Sprintf("%s holds %s %q", names[i], n.why, n.text))
			}
		}
	}
	sort.Strings(hits)
	return hits, len(texts), len(ns), nil
}

// contains finds n in s as whole words: not inside a longer word or
// number.
func contains(s, n string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], n)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(n)
		if (start == 0 || !wordByte(s[start-1])) && (end == len(s) || !wordByte(s[end])) {
			return true
		}
		i = start + 1
	}
}

func wordByte(b byte) bool {
	return b < 0x80 && (unicode.IsLetter(rune(b)) || unicode.IsDigit(rune(b)))
}

// clinical resource types whose codes and names are PHI.
var clinical = map[string]bool{"Condition": true, "Observation": true, "MedicationRequest": true, "MedicationStatement": true,
	"AllergyIntolerance": true, "Immunization": true, "Procedure": true, "DiagnosticReport": true, "Encounter": true,
	"Appointment": true, "CarePlan": true, "Goal": true, "DocumentReference": true}

// demoNeedles lists what the demo population, as built on day, holds.
func demoNeedles(day time.Time) ([]needle, error) {
	bundle, err := demo.Bundle(day)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(bundle)
	if err != nil {
		return nil, err
	}
	var b struct {
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, err
	}
	var ns []needle
	add := func(text, why string) {
		text = strings.TrimSpace(text)
		if len(text) >= 3 {
			ns = append(ns, needle{text, why})
		}
	}
	for _, e := range b.Entry {
		r := e.Resource
		typ, _ := r["resourceType"].(string)
		switch typ {
		case "Patient", "RelatedPerson", "Practitioner":
			for _, n := range list(r["name"]) {
				nm, _ := n.(map[string]any)
				family, _ := nm["family"].(string)
				add(family, "a name")
				for _, g := range list(nm["given"]) {
					if g, ok := g.(string); ok {
						add(g, "a name")
						add(g+" "+family, "a name")
					}
				}
			}
			for _, id := range list(r["identifier"]) {
				if m, ok := id.(map[string]any); ok {
					v, _ := m["value"].(string)
					add(v, "a record number")
				}
			}
			if bd, ok := r["birthDate"].(string); ok {
				if t, err := time.Parse("2006-01-02", bd); err == nil {
					for _, layout := range []string{"2006-01-02", "01/02/2006", "1/2/2006", "January 2, 2006", "2 January 2006", "02/01/2006"} {
						add(t.Format(layout), "a birth date")
					}
				}
			}
		default:
			if !clinical[typ] {
				continue
			}
			walkCodings(r, func(code, display string) {
				if len(code) >= 4 && !(allDigits(code) && len(code) < 7) {
					add(code, "a code")
				}
				if len(display) >= 6 {
					add(display, "a clinical name")
				}
			})
			if d, ok := r["description"].(string); ok {
				add(d, "a visit reason")
			}
		}
	}
	return ns, nil
}

// walkCodings calls f for every Coding under v.
func walkCodings(v any, f func(code, display string)) {
	switch v := v.(type) {
	case map[string]any:
		if code, ok := v["code"].(string); ok {
			if _, hasSystem := v["system"]; hasSystem {
				display, _ := v["display"].(string)
				f(code, display)
			}
		}
		for k, c := range v {
			if k == "meta" { // security labels and tags are not the person's data
				continue
			}
			walkCodings(c, f)
		}
	case []any:
		for _, c := range v {
			walkCodings(c, f)
		}
	}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func allDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}

// probeNeedles are what a message's text gives: its start and its longer
// lines.
func probeNeedles(text string) []needle {
	text = strings.TrimSpace(text)
	var ns []needle
	if r := []rune(text); len(r) > 40 {
		ns = append(ns, needle{string(r[:40]), "a test message's text"})
	} else if len(r) >= 8 {
		ns = append(ns, needle{text, "a test message's text"})
	}
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); len(line) >= 16 {
			ns = append(ns, needle{line, "a test message's text"})
		}
	}
	return ns
}
