package access

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestConsentSemantics ports the cases of the LEAP consent decision
// service's test suite (sdhealthconnect/leap-cds: no consent, opt-in,
// opt-out, prohibited recipient, label redaction, expired and not yet in
// force) and FHIR R4's rules for several consents (the most specific
// actor match wins, then the most recent).
func TestConsentSemantics(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	org := "Organization/clinic-b"
	dr := "Practitioner/dr-y"
	psy := actCode + "|PSY"
	restricted := confidentiality + "|R"
	req := func(actor string, labels ...string) Request {
		return Request{Actors: []string{actor}, Action: "access", Purpose: "TREAT", Type: "Condition", Labels: labels, At: now}
	}
	optIn := Consent{ID: "opt-in", Date: now.AddDate(0, -1, 0), Provision: Provision{Permit: true, Actors: []string{org}, Purposes: []string{"TREAT"}}}
	optOut := Consent{ID: "opt-out", Date: now.AddDate(0, -1, 0), Provision: Provision{Permit: false}}
	prohibited := Consent{ID: "prohibited", Date: now.AddDate(0, -1, 0), Provision: Provision{Permit: true,
		Provisions: []Provision{{Permit: false, Actors: []string{dr}}}}}
	redact := Consent{ID: "redact", Date: now.AddDate(0, -1, 0), Provision: Provision{Permit: true,
		Provisions: []Provision{{Permit: false, Labels: []string{psy, restricted}}}}}
	expired := Consent{ID: "expired", Date: now.AddDate(-2, 0, 0), To: now.AddDate(-1, 0, 0), Provision: Provision{Permit: false}}
	future := Consent{ID: "future", Date: now, From: now.AddDate(0, 1, 0), Provision: Provision{Permit: false}}
	newerPermit := Consent{ID: "newer", Date: now.AddDate(0, 0, -1), Provision: Provision{Permit: true}}
	denyAll := Consent{ID: "deny-all", Date: now, Provision: Provision{Permit: false}}
	permitDr := Consent{ID: "permit-dr", Date: now.AddDate(-1, 0, 0), Provision: Provision{Permit: true, Actors: []string{dr}}}
	classDeny := Consent{ID: "no-notes", Date: now, Provision: Provision{Permit: true,
		Provisions: []Provision{{Permit: false, Classes: []string{"DocumentReference"}}}}}
	periodProvision := Consent{ID: "until-june", Date: now, Provision: Provision{Permit: false,
		Provisions: []Provision{{Permit: true, Actors: []string{org}, To: now.AddDate(0, -5, 0)}}}}
	for _, tc := range []struct {
		name string
		cs   []Consent
		r    Request
		want int
		id   string
	}{
		{"no consent", nil, req(org), ConsentNone, ""},
		{"opt-in: the named organization, for treatment", []Consent{optIn}, req(org), ConsentPermit, "opt-in"},
		{"opt-in: another organization is not covered", []Consent{optIn}, req("Organization/other"), ConsentNone, ""},
		{"opt-in: another purpose is not covered", []Consent{optIn}, Request{Actors: []string{org}, Action: "access", Purpose: "HMARKT", Type: "Condition", At: now}, ConsentNone, ""},
		{"opt-out", []Consent{optOut}, req(org), ConsentDeny, "opt-out"},
		{"prohibited recipient is denied", []Consent{prohibited}, req(dr), ConsentDeny, "prohibited"},
		{"everyone else is permitted", []Consent{prohibited}, req(org), ConsentPermit, "prohibited"},
		{"label redaction: a PSY resource is denied", []Consent{redact}, req(org, psy), ConsentDeny, "redact"},
		{"label redaction: a restricted resource is denied", []Consent{redact}, req(org, restricted), ConsentDeny, "redact"},
		{"label redaction: an ordinary resource is permitted", []Consent{redact}, req(org), ConsentPermit, "redact"},
		{"an expired consent does not apply", []Consent{expired}, req(org), ConsentNone, ""},
		{"a consent not yet in force does not apply", []Consent{future}, req(org), ConsentNone, ""},
		{"the most recent of equal matches wins", []Consent{optOut, newerPermit}, req(org), ConsentPermit, "newer"},
		{"the most specific actor beats a newer general one", []Consent{denyAll, permitDr}, req(dr), ConsentPermit, "permit-dr"},
		{"the general one applies to others", []Consent{denyAll, permitDr}, req(org), ConsentDeny, "deny-all"},
		{"a data class excepted", []Consent{classDeny}, Request{Actors: []string{org}, Action: "access", Type: "DocumentReference", At: now}, ConsentDeny, "no-notes"},
		{"other classes permitted", []Consent{classDeny}, req(org), ConsentPermit, "no-notes"},
		{"a nested permit past its period no longer applies", []Consent{periodProvision}, req(org), ConsentDeny, "until-june"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, id := EvaluateConsents(tc.cs, tc.r)
			if got != tc.want || id != tc.id {
				t.Errorf("EvaluateConsents = %d %q, want %d %q", got, id, tc.want, tc.id)
			}
		})
	}
}

// TestConsentInDecide: "share my medicines and visits with my daughter
// for a year, but never my mental-health notes": the caregiver reads
// what the grant covers except what the consent denies, named in the
// decision; a clinician a consent prohibits is refused despite a care
// relationship; the patient is never bound by their own consents; and a
// consent never lets in someone the relationship does not.
func TestConsentInDecide(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	kinds, _ := KindTypes([]string{"medications", "visits", "conditions"})
	never := Consent{ID: "walter-linda", Date: now, Provision: Provision{Permit: true, Actors: []string{"RelatedPerson/linda"},
		Provisions: []Provision{{Permit: false, Labels: []string{actCode + "|PSY"}}}}}
	noDrY := Consent{ID: "not-dr-y", Date: now, Provision: Provision{Permit: true, Provisions: []Provision{{Permit: false, Actors: []string{"Practitioner/y"}}}}}
	pol := &Policy{Consents: []Consent{never, noDrY}}
	linda := Principal{User: "Person/linda", Patient: "walter", Caregiver: true, At: now, Policy: pol,
		Proxy: &Proxy{Account: "Person/linda", RelatedPerson: "RelatedPerson/linda", Kinds: kinds, Until: now.AddDate(1, 0, 0)}}
	depression := Target{Type: "Condition", ID: "c1", Patients: []string{"walter"}, Labels: []string{actCode + "|PSY", confidentiality + "|R"}}
	afib := Target{Type: "Condition", ID: "c2", Patients: []string{"walter"}}
	if d := Decide(ctx, linda, Read, afib); !d.Permit {
		t.Errorf("Linda reads a condition: %+v", d)
	}
	if d := Decide(ctx, linda, Read, depression); d.Permit || d.Reason != ReasonConsentDenied || d.Consent != "walter-linda" {
		t.Errorf("Linda reads a mental-health record: %+v", d)
	}
	if d := Decide(ctx, linda, Read, Target{Type: "Observation", Patients: []string{"walter"}}); d.Permit || d.Reason != ReasonProxyKind {
		t.Errorf("a consent let Linda past her grant: %+v", d)
	}
	walter := Principal{User: "Person/walter", Patient: "walter", At: now, Policy: pol}
	if d := Decide(ctx, walter, Read, depression); !d.Permit {
		t.Errorf("Walter is bound by his own consent: %+v", d)
	}
	y := Principal{User: "Person/y", Role: RoleClinician, Practitioner: "Practitioner/y", Patient: "walter", CareRelationship: true, At: now, Policy: pol}
	if d := Decide(ctx, y, Read, afib); d.Permit || d.Reason != ReasonConsentDenied {
		t.Errorf("a prohibited clinician reads: %+v", d)
	}
	if d := Decide(ctx, y, Search, Target{Type: "Condition"}); d.Permit {
		t.Errorf("a prohibited clinician searches: %+v", d)
	}
	z := y
	z.Practitioner, z.User = "Practitioner/z", "Person/z"
	if d := Decide(ctx, z, Read, afib); !d.Permit {
		t.Errorf("another clinician is refused: %+v", d)
	}
}

// TestPart2NeedsConsentNamingTheRecipient: a record under 42 CFR Part 2
// goes to a clinician or caregiver only with a consent that names them
// and permits it; the patient always sees their own; a general permit
// that names no one does not suffice.
func TestPart2NeedsConsentNamingTheRecipient(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	rec := Target{Type: "Observation", ID: "o", Patients: []string{"p"}, Labels: []string{actCode + "|" + Part2, actCode + "|ETH"}}
	plain := Target{Type: "Observation", ID: "o2", Patients: []string{"p"}}
	dr := Principal{User: "Person/dr", Role: RoleClinician, Practitioner: "Practitioner/dr", Patient: "p", CareRelationship: true, At: now}
	for _, tc := range []struct {
		name   string
		cs     []Consent
		t      Target
		permit bool
		reason string
	}{
		{"no consent: refused", nil, rec, false, ReasonPart2},
		{"an ordinary record needs none", nil, plain, true, ReasonCare},
		{"a general permit names no one", []Consent{{ID: "g", Date: now, Provision: Provision{Permit: true}}}, rec, false, ReasonPart2},
		{"a consent naming the clinician", []Consent{{ID: "named", Date: now, Provision: Provision{Permit: true, Actors: []string{"Practitioner/dr"}}}}, rec, true, ReasonCare},
		{"a consent naming someone else", []Consent{{ID: "other", Date: now, Provision: Provision{Permit: true, Actors: []string{"Practitioner/x"}}}}, rec, false, ReasonPart2},
		{"naming the clinician but excepting substance use", []Consent{{ID: "named", Date: now, Provision: Provision{Permit: true, Actors: []string{"Practitioner/dr"},
			Provisions: []Provision{{Permit: false, Labels: []string{actCode + "|ETH"}}}}}}, rec, false, ReasonConsentDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dr
			p.Policy = &Policy{Consents: tc.cs}
			if d := Decide(ctx, p, Read, tc.t); d.Permit != tc.permit || d.Reason != tc.reason {
				t.Errorf("Decide = %v %s, want %v %s", d.Permit, d.Reason, tc.permit, tc.reason)
			}
		})
	}
	if d := Decide(ctx, Principal{User: "Person/p", Patient: "p", At: now}, Read, rec); !d.Permit {
		t.Errorf("the patient's own Part 2 record: %+v", d)
	}
}

// TestGrantConsentIsADelegation: a caregiver's grant Consent names them
// and permits, but the grant is the relationship: it cannot outrank a
// general deny the clinic or patient keeps, nor stand as the consent a
// Part 2 record needs; its own exceptions still deny.
func TestGrantConsentIsADelegation(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	grant := Consent{ID: "grant-1", Date: now, Delegation: true, Provision: Provision{Permit: true, Actors: []string{"RelatedPerson/rp-1"},
		Provisions: []Provision{{Permit: false, Labels: []string{actCode + "|HIV"}}}}}
	noPsy := Consent{ID: "clinic-no-psy", Date: now.AddDate(-1, 0, 0), Provision: Provision{Permit: true,
		Provisions: []Provision{{Permit: false, Labels: []string{actCode + "|PSY"}}}}}
	p := Principal{User: "Person/c", Patient: "p", Caregiver: true, At: now, Policy: &Policy{Consents: []Consent{grant, noPsy}},
		Proxy: &Proxy{Account: "Person/c", RelatedPerson: "RelatedPerson/rp-1", Until: now.AddDate(1, 0, 0)}}
	for _, tc := range []struct {
		label  string
		permit bool
		reason string
	}{
		{"", true, ReasonProxy},
		{actCode + "|PSY", false, ReasonConsentDenied},
		{actCode + "|HIV", false, ReasonConsentDenied},
		{actCode + "|" + Part2, false, ReasonPart2},
	} {
		tg := Target{Type: "Observation", Patients: []string{"p"}}
		if tc.label != "" {
			tg.Labels = []string{tc.label}
		}
		if d := Decide(ctx, p, Read, tg); d.Permit != tc.permit || d.Reason != tc.reason {
			t.Errorf("label %q: %v %s, want %v %s", tc.label, d.Permit, d.Reason, tc.permit, tc.reason)
		}
	}
}

// TestSearchHides: a permitted search names the labels that hide a
// resource from the principal whatever else it holds, so the store can
// leave those out before the search runs (and totals never count them).
// Every label it names must be one a read of such a resource is refused
// for; labels that only some resources are refused for are not named.
func TestSearchHides(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	year := now.AddDate(1, 0, 0)
	l := func(codes ...string) []string {
		var out []string
		for _, c := range codes {
			if c == "R" || c == "V" {
				out = append(out, confidentiality+"|"+c)
			} else {
				out = append(out, actCode+"|"+c)
			}
		}
		slices.Sort(out)
		return out
	}
	grant := func(labels ...string) Consent {
		return Consent{ID: "grant-1", Date: now, Delegation: true, Provision: Provision{Permit: true, Actors: []string{"RelatedPerson/rp-1"},
			Provisions: []Provision{{Permit: false, Labels: l(labels...)}}}}
	}
	caregiver := func(g Proxy, cs ...Consent) Principal {
		g.Account, g.RelatedPerson = "Person/c", "RelatedPerson/rp-1"
		return Principal{User: "Person/c", Patient: "p", Caregiver: true, Proxy: &g, At: now, Policy: &Policy{Consents: cs}}
	}
	dr := Principal{User: "Person/dr", Role: RoleClinician, Practitioner: "Practitioner/dr", Patient: "p", CareRelationship: true, At: now}
	drNamed := dr
	drNamed.Policy = &Policy{Consents: []Consent{{ID: "named", Date: now, Provision: Provision{Permit: true, Actors: []string{"Practitioner/dr"}}}}}
	for _, tc := range []struct {
		name string
		p    Principal
		want []string
	}{
		{"the patient", Principal{User: "Person/p", Patient: "p", At: now}, nil},
		{"an adult's caregiver", caregiver(Proxy{Until: year}), l(Part2)},
		{"a teenager's parent", caregiver(Proxy{Until: year, PatientBirth: now.AddDate(-15, 0, 0)}),
			l("PSY", "ETH", "HIV", "SEX", "SDV", "STD", Part2, "R", "V")},
		{"a child's parent", caregiver(Proxy{Until: year, PatientBirth: now.AddDate(-8, 0, 0)}), l(Part2)},
		{"a grant that never shares mental health", caregiver(Proxy{Until: year}, grant("PSY")), l("PSY", Part2)},
		{"another caregiver's grant hides nothing from this one", caregiver(Proxy{Until: year},
			Consent{ID: "grant-2", Date: now, Delegation: true, Provision: Provision{Permit: true, Actors: []string{"RelatedPerson/rp-2"},
				Provisions: []Provision{{Permit: false, Labels: l("HIV")}}}}), l(Part2)},
		{"an exception that names codes too is decided per resource", caregiver(Proxy{Until: year},
			Consent{ID: "grant-1", Date: now, Delegation: true, Provision: Provision{Permit: true, Actors: []string{"RelatedPerson/rp-1"},
				Provisions: []Provision{{Permit: false, Labels: l("HIV"), Codes: []string{"http://loinc.org|1-8"}}}}}), l(Part2)},
		{"an exception with a later permit is decided per resource", caregiver(Proxy{Until: year},
			Consent{ID: "grant-1", Date: now, Delegation: true, Provision: Provision{Permit: true, Actors: []string{"RelatedPerson/rp-1"},
				Provisions: []Provision{{Permit: false, Labels: l("HIV")}, {Permit: true, Classes: []string{"Observation"}}}}}), l(Part2)},
		{"a grant not yet in force", caregiver(Proxy{Until: year}, func() Consent { c := grant("PSY"); c.From = year; return c }()), l(Part2)},
		{"a clinician no Part 2 consent names", dr, l(Part2)},
		{"a clinician a Part 2 consent names", drNamed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(ctx, tc.p, Search, Target{Type: "Observation"})
			if !d.Permit {
				t.Fatalf("search refused: %+v", d)
			}
			if !slices.Equal(d.Hide, tc.want) {
				t.Errorf("Hide = %v, want %v", d.Hide, tc.want)
			}
			for _, label := range d.Hide {
				if rd := Decide(ctx, tc.p, Read, Target{Type: "Observation", ID: "o", Patients: []string{"p"}, Labels: []string{label}}); rd.Permit {
					t.Errorf("Hide names %s, but a record with it is shown (%s)", label, rd.Reason)
				}
			}
		})
	}
}
