package fhir

import (
	"encoding/json"
	"net/url"
	"testing"
)

// Untrusted input reaches these parsers from import files, API bodies and
// search URLs: they must never panic, and what they accept must be sound.

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"resourceType":"Patient","id":"a"}`, `{"resourceType":"Observation","_status":{"extension":[]},"x":[1,{"y":"}"}]}`, `[]`, `{`, `{"resourceType":7}`, `{"a":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		if !json.Valid(r.Raw) || !KnownType(r.Type) || (r.ID != "" && !ValidID(r.ID)) {
			t.Fatalf("accepted %q as %+v", b, r)
		}
		out, err := r.WithMeta("x1", "1", r.LastUpdated)
		if err != nil {
			t.Fatalf("WithMeta of an accepted resource: %v", err)
		}
		if !json.Valid(out.Raw) {
			t.Fatalf("WithMeta made invalid JSON from %q: %s", b, out.Raw)
		}
		var a, c map[string]any
		json.Unmarshal(r.Raw, &a)
		json.Unmarshal(out.Raw, &c)
		for k := range a {
			if _, ok := c[k]; !ok {
				t.Fatalf("WithMeta dropped %q", k)
			}
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2023", "2023-02-29", "2024-02-29T10:00:00+14:00", "1999-12-31T23:59:59.999999999Z", "0000-01-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := ParseDate(s)
		if ok && r.Hi <= r.Lo {
			t.Fatalf("ParseDate(%q) = empty range %v", s, r)
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"patient=1&code=http://loinc.org|4548-4&_sort=-date&_count=5", "date=ge2023&date=lt2024", "_include=MedicationRequest:medication", "code=a\\,b,c|", "_cursor=zz"} {
		f.Add("Observation", s)
	}
	f.Fuzz(func(t *testing.T, typ, raw string) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(typ, vals, false)
		if err != nil {
			return
		}
		if q.Count < 0 || q.Count > MaxCount {
			t.Fatalf("count %d accepted", q.Count)
		}
		for _, c := range q.Clauses {
			for _, d := range c.Dates {
				if d.Hi <= d.Lo {
					t.Fatalf("empty date range accepted from %q", raw)
				}
			}
		}
		q.Encode("c")
	})
}
