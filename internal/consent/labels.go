// Package consent holds what a patient and their clinic decide about who
// may see what: today the security labelling of codes (which records are
// sensitive whatever their source says); consent provisions and proxy
// grants come next. It decides nothing itself: access.Decide applies what
// it gives.
package consent

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"carefront/internal/fhir"
)

//go:embed labels.json
var labelTable []byte

// Label code systems.
const (
	ActCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	Confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
)

// Restricted is the confidentiality every labelled record gets.
const Restricted = Confidentiality + "|R"

const icd10 = "http://hl7.org/fhir/sid/icd-10-cm"

// Labeler gives the sensitivity labels of a record from its codes, by a
// curated, versioned table (labels.json). Safe for concurrent use.
type Labeler struct {
	// Part2Sources are the record sources (meta.source URIs) of programs
	// under 42 CFR Part 2: every record from one is labelled Part 2,
	// whatever its codes.
	Part2Sources []string

	version string
	// codes maps "system|code" to labels (ActCode codes).
	codes map[string][]string
	// ranges are ICD-10-CM category ranges.
	ranges []icdRange
}

type icdRange struct {
	lo, hi, label string
}

type tableFile struct {
	Version string `json:"version"`
	Rules   []struct {
		Label  string   `json:"label"`
		System string   `json:"system"`
		Ranges []string `json:"ranges"`
		Codes  []string `json:"codes"`
	} `json:"rules"`
}

var (
	labels      = []string{"PSY", "ETH", "HIV", "SEX"}
	icdCategory = regexp.MustCompile(`^[A-Z][0-9][0-9A-Z]$`)
)

// LoadLabels reads the built-in table. A mistake in it fails at start-up.
func LoadLabels() (*Labeler, error) {
	return parseLabels(labelTable)
}

func parseLabels(b []byte) (*Labeler, error) {
	var f tableFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("consent: label table: %w", err)
	}
	if f.Version == "" {
		return nil, fmt.Errorf("consent: label table has no version")
	}
	l := &Labeler{version: f.Version, codes: map[string][]string{}}
	for i, r := range f.Rules {
		if !slices.Contains(labels, r.Label) {
			return nil, fmt.Errorf("consent: label table rule %d: %q is not one of %v", i, r.Label, labels)
		}
		for _, rg := range r.Ranges {
			lo, hi, ok := strings.Cut(rg, "-")
			if r.System != icd10 || !ok || !icdCategory.MatchString(lo) || !icdCategory.MatchString(hi) || lo > hi {
				return nil, fmt.Errorf("consent: label table rule %d: %q is not an ICD-10-CM category range like F01-F99", i, rg)
			}
			l.ranges = append(l.ranges, icdRange{lo, hi, r.Label})
		}
		for _, c := range r.Codes {
			if c == "" || r.System == "" {
				return nil, fmt.Errorf("consent: label table rule %d: an empty code or system", i)
			}
			k := r.System + "|" + c
			if !slices.Contains(l.codes[k], r.Label) {
				l.codes[k] = append(l.codes[k], r.Label)
			}
		}
	}
	return l, nil
}

// Version is the table's version.
func (l *Labeler) Version() string { return l.version }

// Fingerprint names what the labels depend on: the table's version and
// the Part 2 sources. The store's label index follows it (store.Relabel).
func (l *Labeler) Fingerprint() string {
	src := slices.Clone(l.Part2Sources)
	slices.Sort(src)
	return l.version + " part2=" + strings.Join(src, " ")
}

// codedPaths are where a record's clinical meaning is coded.
var codedPaths = []string{"code.coding", "valueCodeableConcept.coding", "reasonCode.coding", "type.coding",
	"diagnosis.condition.concept.coding", "medicationCodeableConcept.coding", "category.coding"}

// Labels returns the security labels ("system|code", sorted) the table
// gives a decoded resource: each sensitivity its codes have, and
// confidentiality R when it has any; nil when it has none.
func (l *Labeler) Labels(typ string, tree map[string]any) []string {
	var found []string
	part2 := false
	if meta, _ := tree["meta"].(map[string]any); meta != nil && len(l.Part2Sources) > 0 {
		if src, _ := meta["source"].(string); src != "" {
			part2 = slices.ContainsFunc(l.Part2Sources, func(p string) bool { return src == p || strings.HasPrefix(src, p+"#") })
		}
	}
	add := func(ls ...string) {
		for _, x := range ls {
			if !slices.Contains(found, x) {
				found = append(found, x)
			}
		}
	}
	for _, path := range codedPaths {
		for _, v := range fhir.Values(tree, path) {
			c, _ := v.(map[string]any)
			sys, _ := c["system"].(string)
			code, _ := c["code"].(string)
			if sys == "" || code == "" {
				continue
			}
			add(l.codes[sys+"|"+code]...)
			if sys == icd10 && len(code) >= 3 {
				cat := strings.ToUpper(code[:3])
				for _, r := range l.ranges {
					if r.lo <= cat && cat <= r.hi {
						add(r.label)
					}
				}
			}
		}
	}
	if part2 {
		add("42CFRPart2", "ETH") // Part 2 programs treat substance use
	}
	if len(found) == 0 {
		return nil
	}
	out := make([]string, 0, len(found)+1)
	for _, x := range found {
		out = append(out, ActCode+"|"+x)
	}
	out = append(out, Restricted)
	sort.Strings(out)
	return out
}
