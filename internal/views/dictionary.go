package views

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

//go:embed dictionary.json
var defaultDictionary []byte

// Dictionary holds a plain-language line on what a test measures, keyed by
// LOINC code, in English and Spanish. The default ships in the binary
// (dictionary.json); a clinic may give its own file, whose entries replace
// or add to the default's.
type Dictionary struct {
	tests map[string]map[string]string
}

type dictionaryFile struct {
	Tests map[string]map[string]string `json:"tests"`
}

var loincPattern = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)

// LoadDictionary reads the default dictionary and, when path is not empty,
// a clinic's file over it. A bad file is an error naming what is wrong.
func LoadDictionary(path string) (*Dictionary, error) {
	d := &Dictionary{tests: map[string]map[string]string{}}
	if err := d.merge(defaultDictionary, "the built-in dictionary"); err != nil {
		return nil, err
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("results dictionary: %w", err)
		}
		if err := d.merge(b, path); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *Dictionary) merge(b []byte, name string) error {
	var f dictionaryFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("results dictionary %s: not valid JSON: %v", name, err)
	}
	for code, texts := range f.Tests {
		if !loincPattern.MatchString(code) {
			return fmt.Errorf("results dictionary %s: %q is not a LOINC code", name, code)
		}
		if texts["en"] == "" || texts["es"] == "" {
			return fmt.Errorf("results dictionary %s: %s needs both an English (en) and a Spanish (es) text", name, code)
		}
		d.tests[code] = texts
	}
	return nil
}

// About returns what the test with LOINC code measures in lang (en or
// es), or "".
func (d *Dictionary) About(code, lang string) string {
	if d == nil {
		return ""
	}
	t := d.tests[code]
	if s := t[lang]; s != "" {
		return s
	}
	return t["en"]
}

// Name returns the everyday name of the test with LOINC code in lang:
// the dictionary line's words before its colon ("Hemoglobin A1c"), or ""
// when the line has none.
func (d *Dictionary) Name(code, lang string) string {
	about := d.About(code, lang)
	name, _, ok := strings.Cut(about, ":")
	if !ok || len(name) > 48 {
		return ""
	}
	return name
}

// Len is the number of tests the dictionary explains.
func (d *Dictionary) Len() int { return len(d.tests) }

// LearnMore is a MedlinePlus Connect link for a LOINC code in lang: a link
// only, nothing is fetched.
func LearnMore(code, lang string) string {
	if !loincPattern.MatchString(code) {
		return ""
	}
	if lang != "es" {
		lang = "en"
	}
	v := url.Values{}
	v.Set("mainSearchCriteria.v.cs", "2.16.840.1.113883.6.1")
	v.Set("mainSearchCriteria.v.c", code)
	v.Set("informationRecipient.languageCode.c", lang)
	return "https://connect.medlineplus.gov/application?" + v.Encode()
}
