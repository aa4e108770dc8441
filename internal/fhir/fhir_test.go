package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi string
	}{
		{"2023", "2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z"},
		{"2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"2024-02-29", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"2023-06-20T09:30", "2023-06-20T09:30:00Z", "2023-06-20T09:31:00Z"},
		{"2023-06-20T09:30:00+02:00", "2023-06-20T07:30:00Z", "2023-06-20T07:30:01Z"},
		{"2023-06-20T09:30:00.25Z", "2023-06-20T09:30:00.25Z", "2023-06-20T09:30:00.26Z"},
		// Any precision FHIR admits (the write-time check does) is searchable.
		{"2023-06-20T09:30:00.123456789012Z", "2023-06-20T09:30:00.123456Z", "2023-06-20T09:30:00.123457Z"},
	} {
		got, ok := ParseDate(tc.in)
		want := Range{micros(tc.lo), micros(tc.hi)}
		if !ok || got != want {
			t.Errorf("ParseDate(%q) = %v %v, want %v", tc.in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "23", "2023-13", "2023-02-29", "2023-04-31", "2023-01-01T25:00", "2023-01-01T10:00:00+15:00", "yesterday", "2023/01/01", "2023-01-01 10:00"} {
		if r, ok := ParseDate(bad); ok {
			t.Errorf("ParseDate(%q) = %v, want rejection", bad, r)
		}
	}
}

func TestDateCondSemantics(t *testing.T) {
	day, _ := ParseDate("2023-06-20")
	inside, _ := ParseDate("2023-06-20T10:00:00Z")
	before, _ := ParseDate("2023-06-19T23:59:59Z")
	after, _ := ParseDate("2023-06-21")
	straddle := Range{before.Lo, after.Hi}
	for _, tc := range []struct {
		prefix string
		r      Range
		want   bool
	}{
		{"eq", inside, true}, {"eq", before, false}, {"eq", straddle, false},
		{"ge", inside, true}, {"ge", after, true}, {"ge", before, false}, {"ge", straddle, true},
		{"gt", inside, false}, {"gt", after, true},
		{"le", inside, true}, {"le", before, true}, {"le", after, false},
		{"lt", inside, false}, {"lt", before, true}, {"lt", straddle, true},
	} {
		if got := (DateCond{tc.prefix, day}).Matches(tc.r); got != tc.want {
			t.Errorf("%s 2023-06-20 matches %v = %v, want %v", tc.prefix, tc.r, got, tc.want)
		}
	}
}

func TestExtractIndexAndCompartment(t *testing.T) {
	raw := json.RawMessage(`{"resourceType":"Observation","id":"o1","status":"final",
		"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"SUD"}]},
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"4548-4"},{"system":"urn:local","code":"a1c"}]},
		"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Patient/p2"},{"reference":"Practitioner/d1"}],
		"effectivePeriod":{"start":"2023-01-01"}}`)
	v, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	ix := Extract("Observation", "o1", v)
	if diff := cmp.Diff([]string{"p1", "p2"}, ix.Patients); diff != "" {
		t.Errorf("compartment (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"p1", "p2"}, Compartments("Observation", "o1", v)); diff != "" {
		t.Errorf("Compartments (-want +got):\n%s", diff)
	}
	has := func(e TokenEntry) bool {
		for _, x := range ix.Tokens {
			if x == e {
				return true
			}
		}
		return false
	}
	for _, e := range []TokenEntry{
		{"code", TokenValue{"http://loinc.org", "4548-4"}},
		{"code", TokenValue{"urn:local", "a1c"}},
		{"status", TokenValue{"", "final"}},
		{"_security", TokenValue{"http://terminology.hl7.org/CodeSystem/v3-ActCode", "SUD"}},
	} {
		if !has(e) {
			t.Errorf("missing token %+v in %+v", e, ix.Tokens)
		}
	}
	var patientRefs []RefEntry
	for _, r := range ix.Refs {
		if r.Param == "patient" {
			patientRefs = append(patientRefs, r)
		}
	}
	if diff := cmp.Diff([]RefEntry{{"patient", "Patient", "p1"}}, patientRefs); diff != "" {
		t.Errorf("patient refs (-want +got):\n%s", diff)
	}
	if len(ix.Dates) != 1 || ix.Dates[0].Param != "date" || ix.Dates[0].Lo != micros("2023-01-01T00:00:00Z") || ix.Dates[0].Hi != MaxTime {
		t.Errorf("dates = %+v, want one open-ended period from 2023", ix.Dates)
	}
	if got := SecurityLabels(v); !cmp.Equal(got, []string{"http://terminology.hl7.org/CodeSystem/v3-ActCode|SUD"}) {
		t.Errorf("labels = %v", got)
	}
}

func TestRewriteReferencesKeepsOrder(t *testing.T) {
	in := json.RawMessage(`{"resourceType":"Encounter","z":1,"subject":{"reference":"urn:uuid:x","display":"d"},"a":[{"individual":{"reference":"urn:uuid:y"}}],"_status":{"extension":[]}}`)
	out, err := RewriteReferences(in, func(s string) (string, error) {
		return map[string]string{"urn:uuid:x": "Patient/1", "urn:uuid:y": "Practitioner/2"}[s], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Encounter","z":1,"subject":{"reference":"Patient/1","display":"d"},"a":[{"individual":{"reference":"Practitioner/2"}}],"_status":{"extension":[]}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string][2]string{
		"Patient/1":                          {"Patient", "1"},
		"Patient/1/_history/3":               {"Patient", "1"},
		"https://ehr.example/fhir/Patient/9": {"Patient", "9"},
	} {
		typ, id, ok := ParseRef(in)
		if !ok || typ != want[0] || id != want[1] {
			t.Errorf("ParseRef(%q) = %s %s %v", in, typ, id, ok)
		}
	}
	for _, bad := range []string{"", "#c1", "urn:uuid:1", "Patient?identifier=x", "Nope/1", "Patient/a b", "1"} {
		if _, _, ok := ParseRef(bad); ok {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

// members splits objects exactly as encoding/json reads them.
func TestMembersMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"a":1}`,
		` { "a" : "x,}]\"{" , "b\"c" : [1, {"d": "}"}], "e": null, "f": true, "g": -1.5e3, "ü": {"x": [[]]} } `,
		`{"resourceType":"Patient","_birthDate":{"extension":[{"url":"u","valueString":"\\\"quoted\\\""}]}}`,
	} {
		ms, err := members(json.RawMessage(in))
		if err != nil {
			t.Fatalf("members(%s): %v", in, err)
		}
		got := map[string]any{}
		for _, m := range ms {
			var v any
			if err := json.Unmarshal(m.val, &v); err != nil {
				t.Fatalf("member %q has value %q: %v", m.key, m.val, err)
			}
			got[m.key] = v
		}
		var want map[string]any
		json.Unmarshal([]byte(in), &want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("members(%s) (-want +got):\n%s", in, diff)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":"x}`, `{"a":1,}x`} {
		if _, err := members(json.RawMessage(bad)); err == nil {
			t.Errorf("members(%s) accepted", bad)
		}
	}
}

// TestCompartmentsAgreeWithTheIndex: the compartment read on its own is the
// one the full index computes, for every resource of the Synthea fixtures
// (and the hand-made one above, with a patient as performer).
func TestCompartmentsAgreeWithTheIndex(t *testing.T) {
	dir := os.Getenv("CAREFRONT_SYNTHEA_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "fixtures", "synthea-r4")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Synthea fixtures in %s on CI; set CAREFRONT_SYNTHEA_DIR", dir)
		}
		t.Skipf("no Synthea fixtures in %s", dir)
	}
	n, in := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range bundle.Entry {
			v, err := Decode(e.Resource)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			typ, _ := v["resourceType"].(string)
			id, _ := v["id"].(string)
			want := Extract(typ, id, v).Patients
			if got := Compartments(typ, id, v); !slices.Equal(got, want) {
				t.Errorf("%s/%s: Compartments = %v, index says %v", typ, id, got, want)
			}
			n++
			if len(want) > 0 {
				in++
			}
		}
	}
	if n == 0 || in == 0 {
		t.Fatalf("%d resources, %d in a compartment: the fixtures prove nothing", n, in)
	}
}
