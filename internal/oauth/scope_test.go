package oauth

import (
	"strings"
	"testing"
)

// TestParseScope: SMART v1 and v2 resource scopes, wildcards, granular
// queries and the plain scopes parse to their meaning; everything else
// is refused with the scope named.
func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in      string
		canon   string
		typ     string
		perms   Perm
		query   string
		wantErr string
	}{
		{in: "openid", canon: "openid"},
		{in: "launch/patient", canon: "launch/patient"},
		{in: "offline_access", canon: "offline_access"},
		{in: "patient/Observation.read", canon: "patient/Observation.read", typ: "Observation", perms: Read | Search},
		{in: "patient/*.read", canon: "patient/*.read", typ: "*", perms: Read | Search},
		{in: "patient/Observation.rs", canon: "patient/Observation.rs", typ: "Observation", perms: Read | Search},
		{in: "patient/Observation.r", canon: "patient/Observation.r", typ: "Observation", perms: Read},
		{in: "patient/*.cruds", canon: "patient/*.cruds", typ: "*", perms: Create | Read | Update | Delete | Search},
		{in: "user/Patient.write", canon: "user/Patient.write", typ: "Patient", perms: Create | Update | Delete},
		{in: "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			canon: "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			typ:   "Observation", perms: Read | Search, query: "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
		{in: "patient/Observation.rs?category=a%26b", canon: "patient/Observation.rs?category=a%26b", typ: "Observation", perms: Read | Search, query: "a&b"},
		{in: "patient/Condition.rs?category=problem-list-item", canon: "patient/Condition.rs?category=problem-list-item", typ: "Condition", perms: Read | Search, query: "problem-list-item"},
		{in: "", wantErr: "malformed"},
		{in: "patient/Observation.sr", wantErr: "in that order"},
		{in: "patient/Observation.rr", wantErr: "in that order"},
		{in: "patient/Observation.x", wantErr: "in that order"},
		{in: "patient/Observation", wantErr: "must be patient/Type.permissions"},
		{in: "patient/.rs", wantErr: "must be patient/Type.permissions"},
		{in: "patient/Unicorn.rs", wantErr: "not a FHIR resource type"},
		{in: "practitioner/Observation.rs", wantErr: "not one carefront knows"},
		{in: "admin", wantErr: "not one carefront knows"},
		{in: "patient/Observation.read?category=laboratory", wantErr: "v1 scope cannot carry a query"},
		{in: "patient/*.rs?category=laboratory", wantErr: "needs a resource type"},
		{in: "patient/Observation.rs?code=4548-4", wantErr: "by category only"},
		{in: "patient/Patient.rs?category=x", wantErr: "Patient has no category"},
		{in: "patient/Observation.rs?category=", wantErr: "category is empty"},
		{in: "patient/Observation.rs?%zz", wantErr: "malformed query"},
		{in: "patient/Observation.rs\x00", wantErr: "malformed"},
		{in: "patient/Observation.rs " + strings.Repeat("x", 600), wantErr: "malformed"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseScope(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseScope(%q) = %+v, %v; want an error with %q", tc.in, s, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tc.canon {
				t.Errorf("String() = %q, want %q", got, tc.canon)
			}
			if s.Type != tc.typ || s.Perms != tc.perms {
				t.Errorf("type %q perms %05b, want %q %05b", s.Type, s.Perms, tc.typ, tc.perms)
			}
			if got := s.Query.Get("category"); got != tc.query {
				t.Errorf("category %q, want %q", got, tc.query)
			}
		})
	}
}

// TestParseScopes: a list drops repeats and fails on its first bad scope.
func TestParseScopes(t *testing.T) {
	ss, err := ParseScopes("openid  fhirUser patient/Observation.rs openid launch/patient")
	if err != nil || Format(ss) != "openid fhirUser patient/Observation.rs launch/patient" {
		t.Errorf("ParseScopes = %q, %v", Format(ss), err)
	}
	if _, err := ParseScopes("openid patient/Observation.rs patient/Nope.rs"); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("a bad scope in a list: %v", err)
	}
	obs, _ := ParseScope("patient/Observation.rs")
	all, _ := ParseScope("patient/*.read")
	for _, tc := range []struct {
		s    Scope
		typ  string
		p    Perm
		want bool
	}{{obs, "Observation", Read, true}, {obs, "Observation", Search, true}, {obs, "Condition", Read, false},
		{obs, "Observation", Create, false}, {all, "Condition", Search, true}, {Scope{Plain: "openid"}, "Patient", Read, false}} {
		if got := tc.s.Covers(tc.typ, tc.p); got != tc.want {
			t.Errorf("%s covers %s %05b = %v, want %v", tc.s, tc.typ, tc.p, got, tc.want)
		}
	}
}

// FuzzParseScope: parsing never panics, and a parsed scope written in
// canonical form parses again to the same canonical form.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"openid", "patient/*.read", "patient/Observation.rs?category=laboratory", "user/Patient.cruds", "patient/Observation.rs?category=a&category=b", "system/Encounter.write"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseScope(in)
		if err != nil {
			return
		}
		again, err := ParseScope(s.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", s.String(), in, err)
		}
		if again.String() != s.String() || again.Perms != s.Perms || again.Type != s.Type {
			t.Fatalf("%q -> %q -> %q", in, s.String(), again.String())
		}
	})
}

// TestWithin: what a person may approve of what an app asked.
func TestWithin(t *testing.T) {
	p := func(s string) Scope {
		sc, err := ParseScope(s)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	for _, tc := range []struct {
		granted, asked string
		want           bool
	}{
		{"patient/Observation.rs", "patient/*.rs", true},
		{"patient/Observation.r", "patient/Observation.rs", true},
		{"patient/Observation.rs", "patient/Observation.read", true},
		{"patient/Observation.rs?category=laboratory", "patient/Observation.rs", true},
		{"patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory", true},
		{"openid", "openid", true},
		{"patient/Observation.rs", "patient/Condition.rs", false},
		{"patient/Observation.cruds", "patient/Observation.rs", false},
		{"user/Observation.rs", "patient/*.rs", false},
		{"patient/Observation.rs", "patient/Observation.rs?category=laboratory", false},
		{"patient/Observation.rs?category=vital-signs", "patient/Observation.rs?category=laboratory", false},
		{"offline_access", "openid", false},
		{"patient/*.rs", "patient/Observation.rs", false},
	} {
		if got := p(tc.granted).Within(p(tc.asked)); got != tc.want {
			t.Errorf("%s within %s = %v, want %v", tc.granted, tc.asked, got, tc.want)
		}
	}
}

// TestStoredScopesAreEachCallersOwn: the parses of stored scope lists are
// kept, but a caller changing its slice changes nobody else's, and a list
// that does not parse is still refused.
func TestStoredScopesAreEachCallersOwn(t *testing.T) {
	const list = "launch/patient patient/Observation.rs patient/Condition.rs"
	first, err := storedScopes(list)
	if err != nil {
		t.Fatal(err)
	}
	first[0] = Scope{Plain: "changed"}
	first = append(first, Scope{Plain: "added"})
	second, err := storedScopes(list)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ParseScopes(list)
	if len(second) != len(want) || second[0].String() != "launch/patient" || second[1].String() != want[1].String() {
		t.Errorf("second parse = %v, want %v", second, want)
	}
	for range 2 {
		if _, err := storedScopes("patient/Observation.rs patient/.zz"); err == nil {
			t.Error("a malformed stored list parsed")
		}
	}
}
