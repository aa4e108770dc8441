package consent

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLabelsFromCodes(t *testing.T) {
	l, err := LoadLabels()
	if err != nil {
		t.Fatal(err)
	}
	if l.Version() == "" {
		t.Error("the table has no version")
	}
	psy, eth, hiv, sex := ActCode+"|PSY", ActCode+"|ETH", ActCode+"|HIV", ActCode+"|SEX"
	for _, tc := range []struct {
		name, typ, resource string
		want                []string
	}{
		{"depression by ICD-10-CM", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F32.9"}]}}`, []string{psy, Restricted}},
		{"alcohol use disorder is substance use, not mental health", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F10.20"}]}}`, []string{eth, Restricted}},
		{"first and last categories of a range", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F01.50"},{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F99"}]}}`, []string{psy, Restricted}},
		{"just outside a range", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"G00.0"},{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"E11.9"}]}}`, nil},
		{"pregnancy chapter ends at O9A", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"O9A.211"}]}}`, []string{sex, Restricted}},
		{"HIV status", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"Z21"}]}}`, []string{hiv, Restricted}},
		{"HIV test by LOINC", "Observation", `{"code":{"coding":[{"system":"http://loinc.org","code":"56888-1"}]}}`, []string{hiv, Restricted}},
		{"alcohol screening by LOINC", "Observation", `{"code":{"coding":[{"system":"http://loinc.org","code":"75626-2"}]}}`, []string{eth, Restricted}},
		{"contraception care by SNOMED", "Procedure", `{"code":{"coding":[{"system":"http://snomed.info/sct","code":"389095005"}]}}`, []string{sex, Restricted}},
		{"a visit for depression, by its reason", "Encounter", `{"reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":"35489007"}]}]}`, []string{psy, Restricted}},
		{"a coded result value", "Observation", `{"code":{"text":"x"},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"86406008"}]}}`, []string{hiv, Restricted}},
		{"two sensitivities", "Condition", `{"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F32.9"},{"system":"http://snomed.info/sct","code":"7200002"}]}}`, []string{eth, psy, Restricted}},
		{"the same code in another system labels nothing", "Condition", `{"code":{"coding":[{"system":"http://example.org/local","code":"F32.9"}]}}`, nil},
		{"diabetes labels nothing", "Condition", `{"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tree map[string]any
			if err := json.Unmarshal([]byte(tc.resource), &tree); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, l.Labels(tc.typ, tree)); d != "" {
				t.Errorf("Labels (-want +got):\n%s", d)
			}
		})
	}
}

func TestBadLabelTables(t *testing.T) {
	for name, table := range map[string]string{
		"not JSON":        `{`,
		"no version":      `{"rules":[]}`,
		"unknown label":   `{"version":"1","rules":[{"label":"GOSSIP","system":"http://loinc.org","codes":["1-1"]}]}`,
		"range backwards": `{"version":"1","rules":[{"label":"PSY","system":"http://hl7.org/fhir/sid/icd-10-cm","ranges":["F99-F01"]}]}`,
		"range not ICD":   `{"version":"1","rules":[{"label":"PSY","system":"http://snomed.info/sct","ranges":["F01-F99"]}]}`,
		"range malformed": `{"version":"1","rules":[{"label":"PSY","system":"http://hl7.org/fhir/sid/icd-10-cm","ranges":["F1-F99"]}]}`,
		"empty code":      `{"version":"1","rules":[{"label":"PSY","system":"http://loinc.org","codes":[""]}]}`,
	} {
		if _, err := parseLabels([]byte(table)); err == nil || !strings.HasPrefix(err.Error(), "consent: label table") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestPart2BySource: every record from a source marked Part 2 is
// labelled Part 2 (and substance use, restricted) whatever its codes; a
// record with the same codes from elsewhere is not.
func TestPart2BySource(t *testing.T) {
	l, err := LoadLabels()
	if err != nil {
		t.Fatal(err)
	}
	l.Part2Sources = []string{"https://sud.example.org/fhir"}
	bp := map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "85354-9"}}}}
	from := func(src string) map[string]any {
		r := map[string]any{}
		for k, v := range bp {
			r[k] = v
		}
		r["meta"] = map[string]any{"source": src}
		return r
	}
	got := l.Labels("Observation", from("https://sud.example.org/fhir#visit-12"))
	for _, want := range []string{ActCode + "|42CFRPart2", ActCode + "|ETH", Restricted} {
		if !slices.Contains(got, want) {
			t.Errorf("a Part 2 program's record lacks %s: %v", want, got)
		}
	}
	if got := l.Labels("Observation", from("https://hospital.example.org/fhir")); len(got) != 0 {
		t.Errorf("a record from elsewhere is labelled %v", got)
	}
	if got := l.Labels("Observation", from("https://sud.example.org/fhirX")); len(got) != 0 {
		t.Errorf("a source sharing a prefix is labelled %v", got)
	}
}
