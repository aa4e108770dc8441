package access

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestAgeAt(t *testing.T) {
	d := func(s string) time.Time { v, _ := time.Parse("2006-01-02T15:04", s); return v }
	for _, tc := range []struct {
		birth, at string
		want      int
	}{
		{"2008-06-15T00:00", "2026-06-14T23:59", 17},
		{"2008-06-15T00:00", "2026-06-15T00:00", 18},
		{"2014-06-15T00:00", "2026-06-14T12:00", 11},
		{"2014-06-15T00:00", "2026-06-15T12:00", 12},
		{"2008-02-29T00:00", "2026-02-28T23:59", 17},
		{"2008-02-29T00:00", "2026-03-01T00:00", 18},
		{"2008-02-29T00:00", "2028-02-29T00:00", 20},
	} {
		if got := AgeAt(d(tc.birth), d(tc.at)); got != tc.want {
			t.Errorf("AgeAt(%s, %s) = %d, want %d", tc.birth, tc.at, got, tc.want)
		}
	}
}

// TestProxyDecisions: a caregiver's grant limits what they see of the
// patient's record: its data kinds, its end, the patient's coming of age,
// and a teenager's sensitive records; the patient's own rules (release of
// results) apply to them too.
func TestProxyDecisions(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	year := now.AddDate(1, 0, 0)
	born := func(years, days int) time.Time { return now.AddDate(-years, 0, days) }
	psy := []string{actCode + "|PSY", confidentiality + "|R"}
	obs := func(labels []string) Target {
		return Target{Type: "Observation", ID: "o", Patients: []string{"kid"}, Labels: labels}
	}
	med := Target{Type: "MedicationRequest", ID: "m", Patients: []string{"kid"}}
	medsVisits, bad := KindTypes(Presets["medications-visits"])
	if bad != "" || !slices.Contains(medsVisits, "Encounter") || slices.Contains(medsVisits, "Observation") {
		t.Fatalf("medications-visits is %v (%q)", medsVisits, bad)
	}
	if _, bad := KindTypes([]string{"medications", "x-rays"}); bad != "x-rays" {
		t.Errorf("a kind that does not exist: %q", bad)
	}
	for _, tc := range []struct {
		name   string
		grant  Proxy
		a      Action
		t      Target
		permit bool
		reason string
	}{
		{"full access reads a result", Proxy{Until: year}, Read, obs(nil), true, ReasonProxy},
		{"full access searches results", Proxy{Until: year}, Search, Target{Type: "Observation"}, true, ReasonProxy},
		{"medications preset reads a medication", Proxy{Kinds: medsVisits, Until: year}, Read, med, true, ReasonProxy},
		{"medications preset refuses a result", Proxy{Kinds: medsVisits, Until: year}, Read, obs(nil), false, ReasonProxyKind},
		{"medications preset refuses a results search", Proxy{Kinds: medsVisits, Until: year}, Search, Target{Type: "Observation"}, false, ReasonProxyKind},
		{"any grant reads the patient's name", Proxy{Kinds: []string{"Appointment"}, Until: year}, Read, Target{Type: "Patient", ID: "kid", Patients: []string{"kid"}}, true, ReasonProxy},
		{"any grant reads the clinician's name", Proxy{Kinds: []string{"Appointment"}, Until: year}, Read, Target{Type: "Practitioner", ID: "dr"}, true, ReasonDirectory},
		{"the last moment of a grant", Proxy{Until: now.Add(time.Nanosecond)}, Read, obs(nil), true, ReasonProxy},
		{"an ended grant", Proxy{Until: now}, Read, obs(nil), false, ReasonProxyExpired},
		{"a child's sensitive record", Proxy{Until: year, PatientBirth: born(11, -1)}, Read, obs(psy), true, ReasonProxy},
		{"a 12-year-old's sensitive record, on the birthday", Proxy{Until: year, PatientBirth: born(12, 0)}, Read, obs(psy), false, ReasonProxySensitive},
		{"a 12-year-old's other records", Proxy{Until: year, PatientBirth: born(12, 0)}, Read, obs(nil), true, ReasonProxy},
		{"a 17-year-old's restricted record", Proxy{Until: year, PatientBirth: born(17, -300)}, Read, obs([]string{confidentiality + "|R"}), false, ReasonProxySensitive},
		{"the day before 18", Proxy{Until: year, PatientBirth: born(18, 1)}, Read, obs(nil), true, ReasonProxy},
		{"at 18 a parent's access ends, whatever the grant said", Proxy{Until: year, PatientBirth: born(18, 0)}, Read, obs(nil), false, ReasonProxyAdult},
		{"at 18 searches end too", Proxy{Until: year, PatientBirth: born(18, 0)}, Search, Target{Type: "Observation"}, false, ReasonProxyAdult},
		{"a clinic's own ages", Proxy{Until: year, PatientBirth: born(13, 0), Ages: Ages{Teen: 14, Adult: 19}}, Read, obs(psy), true, ReasonProxy},
		{"an adult patient's caregiver (no birth date kept)", Proxy{Until: year}, Read, obs(psy), true, ReasonProxy},
		{"a parent's grant made at 17 ends at 18", Proxy{Until: year, PatientBirth: born(18, 0), Granted: now.AddDate(-1, 0, 0)}, Read, obs(nil), false, ReasonProxyAdult},
		{"an adult patient's grant: no age rules", Proxy{Until: year, PatientBirth: born(85, 0), Granted: now.AddDate(0, -1, 0)}, Read, obs(psy), true, ReasonProxy},
		{"a caregiver with no grant in force", Proxy{}, Read, obs(nil), false, ReasonProxyExpired},
		{"another patient's record", Proxy{Until: year}, Read, Target{Type: "Observation", Patients: []string{"other"}}, false, ReasonOtherPatient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.grant
			p := Principal{User: "Person/parent", Patient: "kid", Proxy: &g, At: now}
			d := Decide(context.Background(), p, tc.a, tc.t)
			if d.Permit != tc.permit || d.Reason != tc.reason {
				t.Errorf("Decide = %v %s, want %v %s", d.Permit, d.Reason, tc.permit, tc.reason)
			}
		})
	}
	// A caregiver whose grant is not in the patient's policy (revoked, or
	// never made) is refused everything, even the patient's name.
	for _, a := range []Action{Read, Search} {
		d := Decide(context.Background(), Principal{User: "Person/parent", Patient: "kid", Caregiver: true, At: now}, a,
			Target{Type: "Patient", ID: "kid", Patients: []string{"kid"}})
		if d.Permit || d.Reason != ReasonProxyNoGrant {
			t.Errorf("%s with no grant = %+v, want refused %s", a, d, ReasonProxyNoGrant)
		}
	}
	// ProxyFor finds the caregiver's grant in the compiled policy.
	pol := &Policy{Proxies: []Proxy{{GrantID: "g1", Account: "Person/a", Until: year}, {GrantID: "g2", Account: "Person/b", Until: year}}}
	if g := pol.ProxyFor("Person/b"); g == nil || g.GrantID != "g2" {
		t.Errorf("ProxyFor(Person/b) = %+v, want g2", g)
	}
	if g := pol.ProxyFor("Person/c"); g != nil {
		t.Errorf("ProxyFor(Person/c) = %+v, want none", g)
	}
	// A parent's grant ended by the child's coming of age, with years
	// left on it, does not shadow the grant the adult gave since.
	grown := &Policy{Proxies: []Proxy{
		{GrantID: "parent", Account: "Person/a", Until: now.AddDate(5, 0, 0), PatientBirth: born(18, -10), Granted: now.AddDate(-3, 0, 0)},
		{GrantID: "adult", Account: "Person/a", Until: year, PatientBirth: born(18, -10), Granted: now.AddDate(0, 0, -1)},
	}}
	if g := grown.ProxyFor("Person/a"); g == nil || g.GrantID != "adult" {
		t.Errorf("ProxyFor after coming of age = %+v, want the adult's own grant", g)
	}

	// The patient's release choice binds their caregiver.
	p := Principal{User: "Person/parent", Patient: "kid", Proxy: &Proxy{Until: year}, At: now,
		Policy: &Policy{Wait: map[string]int{CategoryLab: 7}}}
	d := Decide(context.Background(), p, Read, Target{Type: "Observation", ID: "o", Patients: []string{"kid"},
		Result: &ResultFacts{Status: "final", Categories: []string{CategoryLab}, Issued: now.Add(-time.Hour)}})
	if !d.Permit || !d.Obligation.Holds(now) {
		t.Errorf("a caregiver sees a result the patient asked to wait for: %+v", d)
	}
}

// TestComingOfAge: a parent's grant ends at the patient's adult
// birthday when that comes before its own end; an adult's grant only at
// its end.
func TestComingOfAge(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	birth := time.Date(2009, 2, 28, 0, 0, 0, 0, time.UTC)
	g := Proxy{Until: now.AddDate(5, 0, 0), PatientBirth: birth}
	adult, ok := g.ComesOfAge()
	if want := time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC); !ok || !adult.Equal(want) || !g.EndsAt().Equal(want) {
		t.Errorf("ComesOfAge = %v %v, EndsAt %v; want %v", adult, ok, g.EndsAt(), want)
	}
	if g.Ended(adult.Add(-time.Nanosecond)) || !g.Ended(adult) {
		t.Error("Ended disagrees with ComesOfAge")
	}
	g.Ages = Ages{Adult: 19}
	if adult, _ := g.ComesOfAge(); adult.Year() != 2028 {
		t.Errorf("a clinic's adult age of 19: %v", adult)
	}
	short := Proxy{Until: now.AddDate(0, 1, 0), PatientBirth: birth}
	if !short.EndsAt().Equal(short.Until) {
		t.Errorf("a grant ending before the birthday ends at its end: %v", short.EndsAt())
	}
	grown := Proxy{Until: now.AddDate(1, 0, 0), PatientBirth: time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), Granted: now}
	if _, ok := grown.ComesOfAge(); ok || !grown.EndsAt().Equal(grown.Until) {
		t.Error("an adult patient's grant has no coming of age")
	}
}
