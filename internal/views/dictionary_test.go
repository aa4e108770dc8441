package views_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"carefront/internal/views"
)

func TestDictionary(t *testing.T) {
	d, err := views.LoadDictionary("")
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() < 50 {
		t.Errorf("the built-in dictionary explains %d codes", d.Len())
	}
	for _, tc := range []struct{ code, lang, name, about string }{
		{"4548-4", "en", "Hemoglobin A1c", "average blood sugar"},
		{"4548-4", "es", "Hemoglobina A1c", "azúcar en la sangre"},
		{"4548-4", "fr", "Hemoglobin A1c", "average blood sugar"}, // unknown language: English
		{"29463-7", "en", "", "Body weight"},                      // no colon: no short name
		{"0000-0", "en", "", ""},
	} {
		if got := d.Name(tc.code, tc.lang); got != tc.name {
			t.Errorf("Name(%s, %s) = %q, want %q", tc.code, tc.lang, got, tc.name)
		}
		if got := d.About(tc.code, tc.lang); !strings.Contains(got, tc.about) || (tc.about == "" && got != "") {
			t.Errorf("About(%s, %s) = %q, want it to hold %q", tc.code, tc.lang, got, tc.about)
		}
	}
	if got := views.LearnMore("4548-4", "es"); !strings.HasPrefix(got, "https://connect.medlineplus.gov/application?") ||
		!strings.Contains(got, "mainSearchCriteria.v.c=4548-4") || !strings.Contains(got, "languageCode.c=es") ||
		!strings.Contains(got, "2.16.840.1.113883.6.1") {
		t.Errorf("LearnMore = %s", got)
	}
	if got := views.LearnMore("not-loinc", "en"); got != "" {
		t.Errorf("LearnMore(not-loinc) = %q", got)
	}
}

// TestClinicDictionary: a clinic's file adds and replaces entries; a bad
// one stops with a message naming what is wrong.
func TestClinicDictionary(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"tests":{"4548-4":{"en":"A1c: our clinic's words.","es":"A1c: nuestras palabras."},"1234-5":{"en":"New test: new words.","es":"Prueba nueva: palabras nuevas."}}}`)
	d, err := views.LoadDictionary(good)
	if err != nil {
		t.Fatal(err)
	}
	if d.About("4548-4", "en") != "A1c: our clinic's words." || d.Name("1234-5", "es") != "Prueba nueva" || d.About("2345-7", "en") == "" {
		t.Errorf("clinic dictionary not merged over the built-in one")
	}
	for name, body := range map[string]string{
		"not JSON":       `{"tests":`,
		"not a LOINC":    `{"tests":{"A1C":{"en":"x","es":"y"}}}`,
		"missing es":     `{"tests":{"4548-4":{"en":"x"}}}`,
		"missing en":     `{"tests":{"4548-4":{"es":"x"}}}`,
		"missing a file": "",
	} {
		path := filepath.Join(dir, "absent.json")
		if body != "" {
			path = write(strings.ReplaceAll(name, " ", "-")+".json", body)
		}
		if _, err := views.LoadDictionary(path); err == nil {
			t.Errorf("%s: loaded", name)
		} else if name != "missing a file" && !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}
