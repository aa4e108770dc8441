package clinical

import (
	"testing"

	"carefront/internal/consent"
	"carefront/internal/fhir"
)

// TestTargetCarriesLabelsFromCodes: a record whose source gave no label
// is labelled by its codes wherever it is read, beside the source's own.
func TestTargetCarriesLabelsFromCodes(t *testing.T) {
	l, err := consent.LoadLabels()
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Labeler: l}
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{`{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p"},"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F32.9"}]}}`,
			[]string{consent.ActCode + "|PSY", consent.Restricted}},
		{`{"resourceType":"Condition","id":"c2","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}]},"subject":{"reference":"Patient/p"},"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F10.20"}]}}`,
			[]string{consent.ActCode + "|ETH", consent.ActCode + "|HIV", consent.Restricted}},
		{`{"resourceType":"Condition","id":"c3","subject":{"reference":"Patient/p"},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]}}`, nil},
	} {
		r, err := fhir.Parse([]byte(tc.raw))
		if err != nil {
			t.Fatal(err)
		}
		tg, err := g.target(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(tg.Labels) != len(tc.want) {
			t.Errorf("%s labels %v, want %v", r.ID, tg.Labels, tc.want)
			continue
		}
		for i := range tc.want {
			if tg.Labels[i] != tc.want[i] {
				t.Errorf("%s labels %v, want %v", r.ID, tg.Labels, tc.want)
			}
		}
	}
}
