package access

import (
	"slices"
	"strings"
	"time"
)

// Proxy is a caregiver's grant to act for a patient: a principal with a
// Proxy acts for Principal.Patient within it. The grant's store, the
// invitations and the pages come with caregiver access; this is the rule
// every path applies.
type Proxy struct {
	GrantID string
	// Account is the caregiver, as Principal.User names them
	// ("Person/ID").
	Account string
	// RelatedPerson is the caregiver's RelatedPerson in the patient's
	// record ("RelatedPerson/ID"), when one is linked: consents name
	// caregivers by it.
	RelatedPerson string
	// Kinds are the resource types the grant covers; empty means full
	// access. The patient's own Patient resource is always covered (their
	// name on the caregiver's pages).
	Kinds []string
	// Until is when access ends (exclusive).
	Until time.Time
	// PatientBirth is the patient's date of birth, for the age policy.
	PatientBirth time.Time
	// Granted is when the grant was made. The age policy applies to
	// grants made while the patient was a minor (a parent's); a grant an
	// adult patient makes is theirs to end.
	Granted time.Time
	// Ages is the age policy; zero values mean the defaults.
	Ages Ages
}

// Ages is the age policy for grants to parents and guardians: from Teen
// on, records with a sensitivity label are hidden from them; at Adult the
// grant ends by itself, whatever its end date said.
type Ages struct {
	Teen, Adult int
}

// Default ages.
const (
	DefaultTeenAge  = 12
	DefaultAdultAge = 18
)

// DataKinds are the kinds of data a patient may share with a caregiver,
// by the names pages and forms use, each as the FHIR types it covers.
var DataKinds = map[string][]string{
	"medications":   {"MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"},
	"visits":        {"Appointment", "Encounter", "QuestionnaireResponse"},
	"allergies":     {"AllergyIntolerance"},
	"results":       {"Observation", "DiagnosticReport"},
	"conditions":    {"Condition"},
	"immunizations": {"Immunization"},
	"procedures":    {"Procedure"},
	"documents":     {"DocumentReference"},
	"care-plans":    {"CarePlan", "CareTeam", "Goal"},
	"messages":      {"Communication"},
}

// KindNames lists DataKinds in the order forms show them.
var KindNames = []string{"medications", "visits", "allergies", "results", "conditions", "immunizations", "procedures", "documents", "care-plans", "messages"}

// Presets name the usual grants, as kinds of data; full (nil) is all of
// it. "messages" takes effect with messaging: until then it shows nothing.
var Presets = map[string][]string{
	"full":               nil,
	"medications-visits": {"medications", "visits", "allergies"},
	"messages":           {"messages"},
}

// KindTypes returns the FHIR types of the named kinds, or the first name
// that is not a kind.
func KindTypes(names []string) (types []string, bad string) {
	for _, n := range names {
		ts, ok := DataKinds[n]
		if !ok {
			return nil, n
		}
		for _, t := range ts {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return types, ""
}

// Reasons of proxy decisions.
const (
	ReasonProxy          = "proxy-grant"
	ReasonProxyNoGrant   = "proxy-no-grant"
	ReasonProxyExpired   = "proxy-expired"
	ReasonProxyAdult     = "proxy-patient-adult"
	ReasonProxyKind      = "proxy-kind-not-granted"
	ReasonProxySensitive = "proxy-sensitive-minor"
)

// sensitiveLabels are the labels a parent of a teenager never sees.
var sensitiveLabels = []string{"PSY", "ETH", "HIV", "SEX", "SDV", "STD", Part2}

// Part2 is the ActCode privacy-law label of records under 42 CFR Part 2.
const Part2 = "42CFRPart2"

const (
	actCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
)

// Sensitive reports whether labels (system|code) mark a record as
// sensitive: a sensitivity code, or confidentiality restricted or very
// restricted.
func Sensitive(labels []string) bool {
	for _, l := range labels {
		sys, code, _ := strings.Cut(l, "|")
		switch {
		case sys == actCode && slices.Contains(sensitiveLabels, code):
			return true
		case sys == confidentiality && (code == "R" || code == "V"):
			return true
		}
	}
	return false
}

// AgeAt is a person's age in whole years at t, from their date of birth
// (a birthday is reached at the start of that day, UTC; a 29 February
// birthday at the start of 1 March in other years).
func AgeAt(birth, t time.Time) int {
	b, at := birth.UTC(), t.UTC()
	age := at.Year() - b.Year()
	birthday := time.Date(at.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC) // Feb 29 normalizes to Mar 1
	if at.Before(birthday) {
		age--
	}
	return age
}

func (a Ages) teen() int {
	if a.Teen > 0 {
		return a.Teen
	}
	return DefaultTeenAge
}

func (a Ages) adult() int {
	if a.Adult > 0 {
		return a.Adult
	}
	return DefaultAdultAge
}

// Ended reports whether the grant no longer gives access at t: past its
// end, or the patient has come of age.
func (g *Proxy) Ended(at time.Time) bool {
	if !at.Before(g.Until) {
		return true
	}
	return g.minor() && AgeAt(g.PatientBirth, at) >= g.Ages.adult()
}

// ComesOfAge returns when the age policy ends the grant (the start of the
// patient's adult birthday), and false when it does not apply (a grant
// an adult patient made, or no date of birth).
func (g *Proxy) ComesOfAge() (time.Time, bool) {
	if !g.minor() {
		return time.Time{}, false
	}
	b := g.PatientBirth.UTC()
	return time.Date(b.Year()+g.Ages.adult(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC), true // AgeAt's birthday
}

// EndsAt is when the grant stops giving access: its end, or the
// patient's coming of age if that is sooner.
func (g *Proxy) EndsAt() time.Time {
	if adult, ok := g.ComesOfAge(); ok && adult.Before(g.Until) {
		return adult
	}
	return g.Until
}

// HidesSensitive reports whether, at t, the grant hides records with a
// sensitivity label (a parent of a teenager): such a caregiver is also
// kept from anything that could reveal them, such as the access log.
func (g *Proxy) HidesSensitive(at time.Time) bool {
	return g.minor() && AgeAt(g.PatientBirth, at) >= g.Ages.teen()
}

// minor reports whether the age policy applies: the grant was made while
// the patient was under age (a grant with no time made is taken as such).
func (g *Proxy) minor() bool {
	if g.PatientBirth.IsZero() {
		return false
	}
	return g.Granted.IsZero() || AgeAt(g.PatientBirth, g.Granted) < g.Ages.adult()
}

// Covers reports whether the grant covers data of type typ at all: full
// access covers everything; a list of kinds covers those, the patient's
// own Patient resource and directory resources.
func (g *Proxy) Covers(typ string) bool {
	if slices.Contains(patientOnlyTypes, typ) {
		return false
	}
	return len(g.Kinds) == 0 || typ == "Patient" || slices.Contains(directoryTypes, typ) || slices.Contains(g.Kinds, typ)
}

// patientOnlyTypes are never shown to a caregiver, whatever the grant:
// the patient's privacy consents and the people they name (other
// caregivers among them).
var patientOnlyTypes = []string{"Consent", "RelatedPerson"}

// ProxyFor returns the grant not revoked through which user
// ("Person/ID") may act for the policy's patient, or nil: the one that
// gives access longest (EndsAt), so a parent's grant ended by the
// child's coming of age never shadows one the adult gave since. A grant
// past its end is returned (Decide refuses it, naming why).
func (p *Policy) ProxyFor(user string) *Proxy {
	if p == nil || user == "" {
		return nil
	}
	var best *Proxy
	for i := range p.Proxies {
		g := &p.Proxies[i]
		if g.Account == user && (best == nil || g.EndsAt().After(best.EndsAt())) {
			best = g
		}
	}
	return best
}

// limit returns the reason the grant refuses action a on t at time at,
// or "" when the grant allows it (the patient's own rules still apply).
func (g *Proxy) limit(at time.Time, a Action, t Target) string {
	if !at.Before(g.Until) {
		return ReasonProxyExpired
	}
	age := -1
	if g.minor() {
		age = AgeAt(g.PatientBirth, at)
		if age >= g.Ages.adult() {
			return ReasonProxyAdult
		}
	}
	typ := t.Type
	if typ == "Task" && t.Focus != "" {
		typ = t.Focus // a request is covered by what it is about
	}
	if !g.Covers(typ) {
		return ReasonProxyKind
	}
	if a == Read && age >= g.Ages.teen() && Sensitive(t.Labels) {
		return ReasonProxySensitive
	}
	return ""
}
