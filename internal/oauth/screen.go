package oauth

import (
	"slices"
)

// The authorization screen: what an app asks for, in plain language
// grouped by kind of data, each kind a checkbox the person may untick;
// the granted scopes are exactly what stays ticked (Narrow).

// Kind is one kind of data the authorization screen shows: a name the
// catalogue translates (apps.kind.NAME) and the FHIR types it covers.
type Kind struct {
	Name  string
	Types []string
}

// Kinds are the FHIR API's types grouped as the screen shows them, in
// its order; every type the API serves is in exactly one kind.
var Kinds = []Kind{
	{"profile", []string{"Patient", "RelatedPerson", "Coverage"}},
	{"medications", []string{"MedicationRequest", "MedicationDispense", "Medication"}},
	{"allergies", []string{"AllergyIntolerance"}},
	{"conditions", []string{"Condition"}},
	{"results", []string{"Observation", "DiagnosticReport", "Specimen", "ServiceRequest"}},
	{"visits", []string{"Encounter", "Location"}},
	{"immunizations", []string{"Immunization"}},
	{"procedures", []string{"Procedure", "Device"}},
	{"documents", []string{"DocumentReference", "QuestionnaireResponse"}},
	{"care-plans", []string{"CarePlan", "CareTeam", "Goal"}},
	{"care-team", []string{"Practitioner", "PractitionerRole", "Organization"}},
	{"provenance", []string{"Provenance"}},
}

// APITypes are the types of every kind: those apps may read and search.
func APITypes() []string {
	var out []string
	for _, k := range Kinds {
		out = append(out, k.Types...)
	}
	return out
}

// appPerms are what an app may do: read and search. Permissions to
// write are never granted (the screen does not offer them).
const appPerms = Read | Search

// Choice is one kind of data an app asks for, as the screen shows it.
type Choice struct {
	Kind string
	// Search says the app asked to search (list) this kind, not only
	// read records it knows the id of.
	Search bool
	// Categories are a granular request's categories ("system|code"),
	// when every scope reaching this kind names some; empty means all.
	Categories []string
	// Allowed is false when the person may not share this kind (a
	// caregiver whose own grant does not cover it): shown, never granted.
	Allowed bool
}

// reaches returns the API types a resource scope reaches.
func reaches(s Scope) []string {
	if !s.Resource() || s.Perms&appPerms == 0 || s.Context == "system" {
		return nil
	}
	if s.Type == "*" {
		return APITypes()
	}
	if slices.Contains(APITypes(), s.Type) {
		return []string{s.Type}
	}
	return nil
}

// Choices lists the kinds of data the asked scopes reach, in the
// screen's order. covers says whether the person may share a type (nil:
// every type).
func Choices(asked []Scope, covers func(typ string) bool) []Choice {
	var out []Choice
	for _, k := range Kinds {
		c := Choice{Kind: k.Name}
		reached, whole := false, false
		for _, s := range asked {
			hit := false
			for _, t := range reaches(s) {
				if slices.Contains(k.Types, t) {
					hit = true
				}
			}
			if !hit {
				continue
			}
			reached = true
			c.Search = c.Search || s.Perms&Search != 0
			if len(s.Query) == 0 {
				whole = true
			}
			for _, v := range s.Query["category"] {
				if !slices.Contains(c.Categories, v) {
					c.Categories = append(c.Categories, v)
				}
			}
		}
		if !reached {
			continue
		}
		if whole {
			c.Categories = nil
		}
		for _, t := range k.Types {
			if covers == nil || covers(t) {
				c.Allowed = true
			}
		}
		out = append(out, c)
	}
	return out
}

// Narrow returns the scopes granted when the person keeps the kinds
// named: every plain scope as asked; each resource scope limited to
// read and search and to the types of the kept kinds it reaches that
// covers allows (nil: all), as itself when that is everything it
// reaches, else one scope per type. Every scope returned is Within one
// asked. Kinds not asked for, or not known, add nothing.
func Narrow(asked []Scope, kept []string, covers func(typ string) bool) []Scope {
	var allowed []string
	for _, k := range Kinds {
		if !slices.Contains(kept, k.Name) {
			continue
		}
		for _, t := range k.Types {
			if covers == nil || covers(t) {
				allowed = append(allowed, t)
			}
		}
	}
	var out []Scope
	add := func(s Scope) {
		if !slices.ContainsFunc(out, func(o Scope) bool { return o.String() == s.String() }) {
			out = append(out, s)
		}
	}
	for _, s := range asked {
		if !s.Resource() {
			add(s)
			continue
		}
		types := reaches(s)
		var keep []string
		for _, t := range types {
			if slices.Contains(allowed, t) {
				keep = append(keep, t)
			}
		}
		if len(keep) == 0 {
			continue
		}
		n := s
		n.Perms = s.Perms & appPerms
		if len(keep) == len(types) {
			add(n)
			continue
		}
		for _, t := range keep {
			one := n
			one.Type = t
			add(one)
		}
	}
	return out
}
