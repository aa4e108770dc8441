package fhir

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/apperr"
)

// extensionWith is an Observation whose first extension has value[x] of
// FHIR type typ, written as the JSON value v.
func extensionWith(typ, v string) string {
	return `{"resourceType":"Observation","status":"final","extension":[{"url":"http://example.org/x","value` +
		strings.ToUpper(typ[:1]) + typ[1:] + `":` + v + `}]}`
}

func TestValidatePrimitivesValues(t *testing.T) {
	tests := []struct {
		typ  string
		good []string // JSON values
		bad  []string
	}{
		{"date",
			[]string{`"1944"`, `"1944-02"`, `"1944-02-29"`, `"2024-02-29"`, `"2000-02-29"`, `"0001-01-01"`, `"9999-12-31"`, `"1944-12-31"`, `"\u0031944-01-01"`},
			[]string{`"1944-13-45"`, `"1944-02-30"`, `"2023-02-29"`, `"1900-02-29"`, `"1944-04-31"`, `"1944-00"`, `"1944-01-00"`, `"0000"`, `"44"`, `"1944-1-1"`, `"1944-01-01T10:00:00Z"`, `"1944/01/01"`, `" 1944"`, `""`, `19440101`, `null`, `{"v":"1944"}`}},
		{"dateTime",
			[]string{`"2015"`, `"2015-02"`, `"2015-02-07"`, `"2015-02-07T13:28:17Z"`, `"2015-02-07T13:28:17-05:00"`, `"2015-02-07T13:28:17.239+02:00"`, `"2017-01-01T00:00:00.000Z"`, `"2016-12-31T23:59:60Z"`, `"2015-02-07T13:28:17+14:00"`, `"2015-02-07T13:28:17-13:59"`},
			[]string{`"2015-02-07T13"`, `"2015-02-07T13:28"`, `"2015-02-07T13:28:17"`, `"2015-02-07T13:28Z"`, `"2015-02-07T24:00:00Z"`, `"2015-02-07T13:60:00Z"`, `"2015-02-07T13:28:61Z"`, `"2015-02-07T13:28:17+14:30"`, `"2015-02-07T13:28:17+15:00"`, `"2015-02-07T13:28:17+05:60"`, `"2015-02-07T13:28:17+0500"`, `"2015-02-07T13:28:17.Z"`, `"2015-02T13:28:17Z"`, `"2023-02-29T00:00:00Z"`, `"2015-02-07 13:28:17Z"`, `"2015-02-07T13:28:17z"`, `""`}},
		{"instant",
			[]string{`"2015-02-07T13:28:17.239+02:00"`, `"2017-01-01T00:00:00Z"`, `"2024-02-29T23:59:59.123456789-08:00"`},
			[]string{`"2015-02-07T13:28Z"`, `"2015-02-07"`, `"2015"`, `"2015-02-07T13:28:17"`, `"2015-02-31T13:28:17Z"`, `""`}},
		{"time",
			[]string{`"00:00:00"`, `"23:59:59"`, `"13:28:17.5"`, `"23:59:60"`},
			[]string{`"24:00:00"`, `"13:28"`, `"13:28:17Z"`, `"1:28:17"`, `"13:28:17."`, `"13:28:17+01:00"`, `""`}},
		{"id",
			[]string{`"a"`, `"Patient-1.2"`, `"` + strings.Repeat("a", 64) + `"`},
			[]string{`"` + strings.Repeat("a", 65) + `"`, `"a b"`, `"a_b"`, `"a/b"`, `""`, `12`}},
		{"code",
			[]string{`"final"`, `"a b"`, `"mg/dL"`, `"ÄÖ"`},
			[]string{`"a  b"`, `" a"`, `"a "`, `"a\tb"`, `"a\nb"`, `""`, `" "`, `1`, `true`}},
		{"boolean",
			[]string{`true`, `false`},
			[]string{`"true"`, `"false"`, `1`, `0`, `True`, `null`, `{}`}},
		{"integer",
			[]string{`0`, `-0`, `1`, `-1`, `2147483647`, `-2147483648`},
			[]string{`1.5`, `1.0`, `1e2`, `2147483648`, `-2147483649`, `99999999999999999999`, `01`, `"1"`, `true`}},
		{"positiveInt",
			[]string{`1`, `2147483647`},
			[]string{`0`, `-1`, `2147483648`, `1.0`, `"1"`}},
		{"unsignedInt",
			[]string{`0`, `1`, `2147483647`},
			[]string{`-1`, `-0`, `2147483648`, `0.5`, `"0"`}},
		{"decimal",
			[]string{`0`, `1.0`, `-1.50`, `3.14159`, `1e10`, `1.5E-3`, `0.000`, `12345678901234567890.123`},
			[]string{`"1.0"`, `true`, `null`, `{}`}},
		{"base64Binary",
			[]string{`"aGVsbG8="`, `"aGVs bG8="`, `"aGVs\nbG8="`, `"++//"`},
			[]string{`"aGVsbG8"`, `"aGV*bG8="`, `"aG Vsb G8="`, `"aGVsbG8=é"`, `""`, `12`}},
		{"uri",
			[]string{`"http://loinc.org"`, `"urn:oid:1.2.3"`, `"#p1"`, `"a"`},
			[]string{`"http://x y"`, `"http://x\ty"`, `""`, `1`}},
		{"url",
			[]string{`"https://example.org/fhir"`},
			[]string{`"https://example.org/ fhir"`, `""`}},
		{"canonical",
			[]string{`"http://hl7.org/fhir/ValueSet/x|4.0.1"`},
			[]string{`"http://hl7.org/fhir/ValueSet/x |4.0.1"`}},
		{"oid",
			[]string{`"urn:oid:1.2.3"`, `"urn:oid:2.16.840.1.113883"`, `"urn:oid:0.0"`},
			[]string{`"urn:oid:3.1"`, `"urn:oid:1"`, `"urn:oid:1.02"`, `"urn:oid:1..2"`, `"urn:oid:1.2."`, `"1.2.3"`, `"urn:OID:1.2"`}},
		{"uuid",
			[]string{`"urn:uuid:c757873d-ec9a-4326-a141-556f43239520"`},
			[]string{`"urn:uuid:C757873D-EC9A-4326-A141-556F43239520"`, `"c757873d-ec9a-4326-a141-556f43239520"`, `"urn:uuid:c757873d-ec9a-4326-a141-556f4323952"`, `"urn:uuid:c757873dec9a-4326-a141-556f43239520x"`}},
		{"string",
			[]string{`"x"`, `" "`, `"line\nbreak"`},
			[]string{`""`, `1`, `true`, `{}`}},
		{"markdown",
			[]string{`"**x**"`},
			[]string{`""`, `2`}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			path := "Observation.extension[0].value" + strings.ToUpper(tt.typ[:1]) + tt.typ[1:]
			want := ""
			for _, v := range tt.good {
				if err := ValidatePrimitives("Observation", json.RawMessage(extensionWith(tt.typ, v))); err != nil {
					t.Errorf("%s = %s: ValidatePrimitives = %v, want nil", path, v, err)
				}
			}
			for _, v := range tt.bad {
				err := ValidatePrimitives("Observation", json.RawMessage(extensionWith(tt.typ, v)))
				msg := checkInvalid(t, err, path, v)
				// The message is the same whatever the bad value: it
				// cannot leak the value.
				if want == "" {
					want = msg
				} else if msg != want {
					t.Errorf("%s = %s: message %q differs from %q", path, v, msg, want)
				}
			}
		})
	}
}

// checkInvalid checks that err is apperr.Invalid naming path and the
// expected type, not the bad value v, and returns its message.
func checkInvalid(t *testing.T, err error, path, v string) string {
	t.Helper()
	if err == nil {
		t.Errorf("%s = %s: ValidatePrimitives = nil, want an error", path, v)
		return ""
	}
	if apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("%s = %s: code %q, want invalid", path, v, apperr.CodeOf(err))
	}
	msg := apperr.MessageOf(err)
	if !strings.HasPrefix(msg, path+" must be ") {
		t.Errorf("%s = %s: message %q does not start with the path", path, v, msg)
	}
	// The type's description may hold a good value ("true"): leave it out.
	rest := err.Error()
	for _, x := range expected {
		rest = strings.ReplaceAll(rest, x, "")
	}
	if s := strings.Trim(v, `"`); len(s) >= 5 && strings.Contains(rest, s) {
		t.Errorf("%s = %s: error %q quotes the value", path, v, err)
	}
	return msg
}

func TestValidatePrimitivesPaths(t *testing.T) {
	tests := []struct {
		name, typ, json string
		path            string // "" for valid
	}{
		{"birthDate", "Patient", `{"resourceType":"Patient","birthDate":"1944-13-45"}`, "Patient.birthDate"},
		{"valid patient", "Patient", `{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2024-01-01T00:00:00Z"},"active":true,"birthDate":"1944-02-29","name":[{"given":["A","B"],"_given":[null,{"extension":[{"url":"http://x","valueCode":"IN"}]}]}],"deceasedBoolean":false,"multipleBirthInteger":2}`, ""},
		{"given in a name in an array", "Patient", `{"resourceType":"Patient","name":[{"family":"F"}],"contact":[{"name":{"given":["A",7]}}]}`, "Patient.contact[0].name.given[1]"},
		{"choice type", "Patient", `{"resourceType":"Patient","deceasedDateTime":"2020-02-30"}`, "Patient.deceasedDateTime"},
		{"choice type other branch", "Patient", `{"resourceType":"Patient","deceasedBoolean":"yes"}`, "Patient.deceasedBoolean"},
		{"extension in a backbone array", "Patient", `{"resourceType":"Patient","contact":[{"gender":"male"},{"telecom":[{"value":"1"},{"extension":[{"url":"http://x","valueString":"s"},{"url":"http://y","valueDateTime":"2020-01-01T10:00"}]}]}]}`, "Patient.contact[1].telecom[1].extension[1].valueDateTime"},
		{"nested extension", "Patient", `{"resourceType":"Patient","extension":[{"url":"http://x","extension":[{"url":"a","valueInteger":1.5}]}]}`, "Patient.extension[0].extension[0].valueInteger"},
		{"modifierExtension", "Patient", `{"resourceType":"Patient","modifierExtension":[{"url":"http://x","valuePositiveInt":0}]}`, "Patient.modifierExtension[0].valuePositiveInt"},
		{"extension url", "Patient", `{"resourceType":"Patient","extension":[{"url":"http://x y","valueBoolean":true}]}`, "Patient.extension[0].url"},
		{"primitive extension", "Patient", `{"resourceType":"Patient","birthDate":"1944-01-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1944-01-01T25:00:00Z"}]}}`, "Patient.birthDate.extension[0].valueDateTime"},
		{"primitive extension id", "Patient", `{"resourceType":"Patient","_birthDate":{"id":7}}`, "Patient.birthDate.id"},
		{"primitive extension array", "Patient", `{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"http://x","valueBoolean":"no"}]}]}]}`, "Patient.name[0].given[1].extension[0].valueBoolean"},
		{"primitive extension of an unknown element", "Patient", `{"resourceType":"Patient","_nickname":{"id":7}}`, ""},
		{"contained", "Patient", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1"},{"resourceType":"Practitioner","id":"p1","birthDate":"2023-02-29"}]}`, "Patient.contained[1].birthDate"},
		{"contained id", "Patient", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o 1"}]}`, "Patient.contained[0].id"},
		{"contained of an unknown type", "Patient", `{"resourceType":"Patient","contained":[{"resourceType":"Nonesuch","birthDate":"x"}]}`, ""},
		{"resource id", "Observation", `{"resourceType":"Observation","id":"` + strings.Repeat("x", 65) + `"}`, "Observation.id"},
		{"meta", "Observation", `{"resourceType":"Observation","meta":{"lastUpdated":"2024-01-01"}}`, "Observation.meta.lastUpdated"},
		{"component", "Observation", `{"resourceType":"Observation","component":[{"valueQuantity":{"value":1}},{"valueQuantity":{"value":"120"}}]}`, "Observation.component[1].valueQuantity.value"},
		{"coding system", "Observation", `{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"},{"system":"http://loinc.org","code":"85354  9"}]}}`, "Observation.code.coding[1].code"},
		{"narrative status", "Observation", `{"resourceType":"Observation","text":{"status":" generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}`, "Observation.text.status"},
		{"content reference", "Questionnaire", `{"resourceType":"Questionnaire","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"boolean","required":"true"}]}]}`, "Questionnaire.item[0].item[0].required"},
		{"bundle entry resource", "Bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520","resource":{"resourceType":"Patient","birthDate":"1944-13-45"}}]}`, "Bundle.entry[0].resource.birthDate"},
		{"bundle response outcome", "Bundle", `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"400","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":" error","code":"invalid"}]}}}]}`, "Bundle.entry[0].response.outcome.issue[0].severity"},
		{"complex type given a string", "Patient", `{"resourceType":"Patient","name":["Smith"]}`, "Patient.name[0]"},
		{"backbone given a number", "Patient", `{"resourceType":"Patient","contact":3}`, "Patient.contact"},
		{"primitive given an array of arrays", "Patient", `{"resourceType":"Patient","name":[{"given":[["A"]]}]}`, "Patient.name[0].given[0]"},
		{"null primitive", "Patient", `{"resourceType":"Patient","birthDate":null}`, "Patient.birthDate"},
		{"single value where an array is usual", "Patient", `{"resourceType":"Patient","name":{"given":"A"}}`, ""},
		{"unknown elements are skipped", "Patient", `{"resourceType":"Patient","nickname":7,"birthdate":"nonsense","extension":[{"url":"http://x","valueWhatever":1}]}`, ""},
		{"escaped member names", "Patient", `{"resourceType":"Patient","birth\u0044ate":"1944-13-45"}`, "Patient.birthDate"},
		{"unknown resource type", "Nonesuch", `{"resourceType":"Nonesuch","birthDate":"1944-13-45"}`, ""},
		{"whitespace", "Patient", "{ \"resourceType\" : \"Patient\" ,\n \"name\" : [ { \"given\" : [ \"A\" , 7 ] } ] }", "Patient.name[0].given[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePrimitives(tt.typ, json.RawMessage(tt.json))
			if tt.path == "" {
				if err != nil {
					t.Errorf("ValidatePrimitives = %v, want nil", err)
				}
				return
			}
			checkInvalid(t, err, tt.path, "")
		})
	}
}

func TestValidatePrimitivesMessage(t *testing.T) {
	err := ValidatePrimitives("Patient", json.RawMessage(`{"resourceType":"Patient","birthDate":"1944-13-45"}`))
	want := "Patient.birthDate must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date"
	if got := apperr.MessageOf(err); got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if strings.Contains(err.Error(), "1944") {
		t.Errorf("error %q quotes the value", err)
	}
	err = ValidatePrimitives("Patient", json.RawMessage(`{"resourceType":"Patient","contact":[{"name":"Jane"}]}`))
	want = "Patient.contact[0].name must be a JSON object (a FHIR HumanName)"
	if got := apperr.MessageOf(err); got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestValidatePrimitivesMalformed(t *testing.T) {
	for _, s := range []string{`[]`, ``, `{"birthDate":}`, `{"birthDate":"1944"`, `{"name":[{"given":["a",]}]}`, `{"a":1,}`, `{"a" 1}`} {
		err := ValidatePrimitives("Patient", json.RawMessage(s))
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("ValidatePrimitives(%q) = %v, want invalid", s, err)
		}
	}
}

// TestTypeTable checks the generated tables against what the R4
// StructureDefinitions say of a few elements.
func TestTypeTable(t *testing.T) {
	t.Log(primitivesSource)
	defs := typeDefs()
	for _, typ := range resourceTypes {
		if defs[typ] == nil {
			t.Errorf("no table for resource type %s", typ)
		}
	}
	tests := []struct{ typ, elem, want string }{
		{"Patient", "birthDate", "date"},
		{"Patient", "deceasedDateTime", "dateTime"},
		{"Patient", "multipleBirthInteger", "integer"},
		{"Patient", "id", "id"},
		{"Patient", "meta", "Meta"},
		{"Patient", "contained", "Resource"},
		{"Patient", "contact", "Patient.contact"},
		{"Patient.contact", "modifierExtension", "Extension"},
		{"Patient.contact", "id", "string"},
		{"Extension", "url", "uri"},
		{"Extension", "valueDateTime", "dateTime"},
		{"Extension", "valueBase64Binary", "base64Binary"},
		{"Extension", "valueUuid", "uuid"},
		{"Extension", "valueHumanName", "HumanName"},
		{"Meta", "lastUpdated", "instant"},
		{"Meta", "profile", "canonical"},
		{"Narrative", "div", "xhtml"},
		{"Questionnaire.item", "item", "Questionnaire.item"},
		{"Observation", "valueQuantity", "Quantity"},
		{"Observation", "issued", "instant"},
		{"Age", "value", "decimal"},
		{"Timing.repeat", "timeOfDay", "time"},
		{"Bundle.entry", "resource", "Resource"},
		{"Attachment", "data", "base64Binary"},
		{"Identifier", "system", "uri"},
	}
	for _, tt := range tests {
		d := defs[tt.typ]
		if d == nil {
			t.Errorf("no table for %s", tt.typ)
			continue
		}
		if got := d.elems[tt.elem].fhirT; got != tt.want {
			t.Errorf("%s.%s is %q, want %q", tt.typ, tt.elem, got, tt.want)
		}
	}
	if _, ok := defs["SubscriptionStatus"]; ok {
		t.Errorf("SubscriptionStatus (FHIR 4.3) is in the R4 tables")
	}
}

// TestValidatorsMatchSpec checks the hand-written validators against the
// R4 regular expressions the generator copied from the StructureDefinitions:
// on every string tried they agree, except where R4 says more than its
// regular expression (real calendar dates, 32-bit integers, non-empty
// values, codes with single spaces only).
func TestValidatorsMatchSpec(t *testing.T) {
	seeds := map[string][]string{
		"date":         {"1944", "1944-02", "2024-02-29", "1900-02-29", "2000-02-29", "0001-01-01", "1944-12-31", "1944-11-31"},
		"dateTime":     {"2015-02-07T13:28:17.239+02:00", "2016-12-31T23:59:60Z", "2015-02-07T13:28:17-14:00", "2015", "2015-02", "2023-02-28T01:02:03Z"},
		"instant":      {"2015-02-07T13:28:17.239+02:00", "2017-01-01T00:00:00Z", "2024-02-29T23:59:59-13:59"},
		"time":         {"13:28:17", "23:59:60.123", "00:00:00"},
		"id":           {"a", "Patient-1.2", strings.Repeat("z", 64)},
		"code":         {"final", "a b c", "mg/dL"},
		"integer":      {"0", "-2147483648", "2147483647", "12"},
		"positiveInt":  {"1", "2147483647", "10"},
		"unsignedInt":  {"0", "2147483647", "10"},
		"decimal":      {"0", "-1.50", "1e10", "1.5E-3", "12.0e+7"},
		"base64Binary": {"aGVsbG8=", "aGVs bG8=", "++//", "ab=="},
		"uri":          {"http://loinc.org", "urn:oid:1.2", "#a"},
		"oid":          {"urn:oid:1.2.3", "urn:oid:2.16.840.1.113883", "urn:oid:0.0"},
		"uuid":         {"urn:uuid:c757873d-ec9a-4326-a141-556f43239520"},
	}
	alphabet := "0123456789-:.TZ+ abcAZ=/\t\n_e"
	patterns := map[string]*regexp.Regexp{}
	for _, p := range specPatterns {
		patterns[p[0]] = regexp.MustCompile(`^(?:` + p[1] + `)$`)
	}
	codePattern := regexp.MustCompile(`^[^\s]+( [^\s]+)*$`) // R4's prose: single spaces only
	rng := rand.New(rand.NewPCG(1, 2))
	for typ, vals := range seeds {
		k := primitiveKinds[typ]
		re := patterns[typ]
		if typ == "code" {
			re = codePattern
		}
		if re == nil {
			t.Fatalf("no R4 pattern for %s", typ)
		}
		tried := map[string]bool{}
		try := func(s string) {
			if tried[s] {
				return
			}
			tried[s] = true
			v := s
			if k > kindDecimal {
				q, _ := json.Marshal(s)
				v = string(q)
			}
			got := validPrimitive(k, []byte(v))
			want := re.MatchString(s) && extraRules(typ, s)
			if got != want {
				t.Errorf("%s %q: valid = %v, R4 says %v", typ, s, got, want)
			}
		}
		for _, s := range vals {
			try(s)
			for range 3000 {
				b := []byte(s)
				for range 1 + rng.IntN(3) {
					i := rng.IntN(len(b) + 1)
					c := alphabet[rng.IntN(len(alphabet))]
					switch rng.IntN(3) {
					case 0:
						b = append(b[:i:i], append([]byte{c}, b[i:]...)...)
					case 1:
						if i < len(b) {
							b[i] = c
						}
					case 2:
						if i < len(b) {
							b = append(b[:i:i], b[i+1:]...)
						}
					}
				}
				try(string(b))
			}
		}
	}
}

// extraRules is what R4 requires beyond its regular expressions.
func extraRules(typ, s string) bool {
	if s == "" {
		return false // JSON strings are never empty in FHIR
	}
	switch typ {
	case "date", "dateTime", "instant":
		d := s
		if len(d) > 10 {
			d = d[:10]
		}
		layout := map[int]string{4: "2006", 7: "2006-01", 10: "2006-01-02"}[len(d)]
		_, err := time.Parse(layout, d)
		return err == nil
	case "integer", "positiveInt", "unsignedInt":
		n, ok := jsonInt([]byte(s))
		return ok && n >= -1<<31 && n < 1<<31
	}
	return true
}

// syntheaDir is where the Synthea fixture Bundles are: CAREFRONT_SYNTHEA_DIR,
// or shared/ beside the repository. On CI they must be there.
func syntheaDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("CAREFRONT_SYNTHEA_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "fixtures", "synthea-r4")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) == 0 {
		if os.Getenv("CI") != "" {
			tb.Fatalf("no Synthea fixtures in %s on CI; set CAREFRONT_SYNTHEA_DIR", dir)
		}
		tb.Skipf("no Synthea fixtures in %s; set CAREFRONT_SYNTHEA_DIR", dir)
	}
	return dir
}

// fixtureResources returns the compacted resources of every entry of the
// fixture Bundle file, as Parse leaves them.
func fixtureResources(tb testing.TB, file string) []*Resource {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	bundle, err := ParseBundle(b)
	if err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	var out []*Resource
	for i, e := range bundle.Entry {
		r, err := Parse(e.Resource)
		if err != nil {
			tb.Fatalf("%s: entry %d: %v", file, i, err)
		}
		out = append(out, r)
	}
	return out
}

func TestValidatePrimitivesSynthea(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(syntheaDir(t), "*.json"))
	n := 0
	for _, f := range files {
		for i, r := range fixtureResources(t, f) {
			if err := ValidatePrimitives(r.Type, r.Raw); err != nil {
				t.Errorf("%s: entry %d: %v", filepath.Base(f), i, err)
			}
			n++
		}
	}
	t.Logf("%d resources of %d Bundles valid", n, len(files))
	// The Bundles themselves, entries and all, are valid too.
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var buf bytes.Buffer
		json.Compact(&buf, b)
		if err := ValidatePrimitives("Bundle", buf.Bytes()); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

func BenchmarkValidatePrimitives(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(syntheaDir(b), "*.json"))
	all := fixtureResources(b, files[0])
	pick := func(typ string, want func(*Resource) bool) *Resource {
		for _, r := range all {
			if r.Type == typ && want(r) {
				return r
			}
		}
		b.Fatalf("no %s in %s", typ, files[0])
		return nil
	}
	first := func(*Resource) bool { return true }
	for _, r := range []*Resource{
		pick("Patient", first),
		pick("Observation", func(r *Resource) bool { return bytes.Contains(r.Raw, []byte(`"valueQuantity"`)) }),
	} {
		b.Run(r.Type, func(b *testing.B) {
			b.SetBytes(int64(len(r.Raw)))
			for b.Loop() {
				if err := ValidatePrimitives(r.Type, r.Raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Bundle", func(b *testing.B) {
		size := 0
		for _, r := range all {
			size += len(r.Raw)
		}
		b.SetBytes(int64(size))
		for b.Loop() {
			for _, r := range all {
				if err := ValidatePrimitives(r.Type, r.Raw); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(all)), "ns/resource")
	})
}

func FuzzValidatePrimitives(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","birthDate":"1944-02-29","_birthDate":{"extension":[{"url":"x","valueInteger":1}]}}`,
		`{"resourceType":"Patient","name":[{"given":["a",null]}],"contained":[{"resourceType":"Observation","valueQuantity":{"value":1e3}}]}`,
		`{"resourceType":"Observation","extension":[{"url":"u","valueDateTime":"2015-02-07T13:28:17Z"}]}`,
		`{"a":`, `{"name":[[[`, `{"birthDate":"\u0031"}`, `{"birthDate":"2024-02-29","active":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ValidatePrimitives("Observation", b)
		if err != nil && apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("ValidatePrimitives(%q) = %v, want invalid or nil", b, err)
		}
		err = ValidatePrimitives("Patient", b)
		if err != nil && apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("ValidatePrimitives(%q) = %v, want invalid or nil", b, err)
		}
		// What it accepts as a Patient has a real birth date and a
		// boolean active, as a decoder reads them.
		var p map[string]any
		if err != nil || json.Unmarshal(b, &p) != nil {
			return
		}
		if v, ok := p["birthDate"]; ok {
			s, _ := v.(string)
			if r, ok := ParseDate(s); !ok || len(s) > 10 || r.Hi <= r.Lo {
				t.Fatalf("accepted birthDate %q", s)
			}
		}
		if v, ok := p["active"]; ok {
			if _, ok := v.(bool); !ok {
				t.Fatalf("accepted active %v", v)
			}
		}
	})
}

// TestSearchValuesWithControlCharacters: a NUL, a newline or bytes that
// are not UTF-8 in any search value is a clear 400 naming the parameter,
// never an error from the database.
func TestSearchValuesWithControlCharacters(t *testing.T) {
	for _, v := range []string{"a\x00b", "4548-4\n", "\x7f", "caf\xe9"} {
		_, err := ParseQuery("Observation", url.Values{"code": {v}}, false)
		if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), `"code"`) {
			t.Errorf("ParseQuery(code=%q) = %v", v, err)
		}
	}
	if _, err := ParseQuery("Observation", url.Values{"code": {"http://loinc.org|4548-4"}, "_lastUpdated": {"ge2024-01-01"}}, false); err != nil {
		t.Errorf("a plain search: %v", err)
	}
}
