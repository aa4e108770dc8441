package access

import (
	"slices"
	"time"
)

// Consent is a patient's privacy consent (a FHIR R4 Consent of scope
// patient-privacy) as the decision applies it. Package consent reads it
// from the Consent resources in carefront's own store.
type Consent struct {
	ID string
	// Date is when it was given (Consent.dateTime): among consents that
	// match a request equally, the most recent wins.
	Date time.Time
	// Period, when set, bounds when the consent applies.
	From, To  time.Time
	Provision Provision
	// Delegation marks a caregiver grant's own Consent: the grant is the
	// relationship, so its base permit adds nothing to the decision; only
	// its exceptions (what the patient never shares) deny. It can never
	// override another consent's deny, nor stand as a Part 2 consent.
	Delegation bool
}

// Provision is a Consent provision: its rule (permit or deny) applies to
// requests that match all its conditions; a nested provision is an
// exception to its parent, applied to the requests it matches.
type Provision struct {
	Permit bool
	// Actors are who the provision is about, as keys (Principal.Actors):
	// "Practitioner/ID", "RelatedPerson/ID", "Organization/ID",
	// "Device/ID", or "system|value" for an identifier. Empty matches
	// everyone.
	Actors []string
	// Actions are the consent actions (access, disclose, ...); empty
	// matches any. Reads and searches are "access".
	Actions []string
	// Purposes are purposes of use (v3 ActReason: TREAT, HPAYMT, ...);
	// empty matches any.
	Purposes []string
	// Classes are resource types; empty matches any.
	Classes []string
	// Codes are "system|code" the resource must carry; empty matches any.
	Codes []string
	// Labels are security labels ("system|code"); the provision matches a
	// resource carrying any of them. Empty matches any resource.
	Labels     []string
	From, To   time.Time
	Provisions []Provision
}

// Request is what a Consent is asked about.
type Request struct {
	Actors  []string // who asks, as keys
	Action  string   // "access"
	Purpose string   // purpose of use, "" when none is given
	Type    string   // resource type
	Codes   []string // the resource's codes, "system|code" (none for a search)
	Labels  []string // the resource's security labels
	At      time.Time
}

// Outcomes of evaluating consents.
const (
	ConsentNone   = 0 // no consent applies: the default policy decides
	ConsentPermit = 1
	ConsentDeny   = 2
)

// matches reports whether the provision's own conditions hold for r.
func (p *Provision) matches(r Request) bool {
	switch {
	case len(p.Actors) > 0 && !anyIn(p.Actors, r.Actors):
		return false
	case len(p.Actions) > 0 && !slices.Contains(p.Actions, r.Action):
		return false
	case len(p.Purposes) > 0 && !slices.Contains(p.Purposes, r.Purpose):
		return false
	case len(p.Classes) > 0 && !slices.Contains(p.Classes, r.Type):
		return false
	case len(p.Codes) > 0 && !anyIn(p.Codes, r.Codes):
		return false
	case len(p.Labels) > 0 && !anyIn(p.Labels, r.Labels):
		return false
	case !p.From.IsZero() && r.At.Before(p.From):
		return false
	case !p.To.IsZero() && !r.At.Before(p.To):
		return false
	}
	return true
}

// evaluate returns the rule of the deepest provision that matches r and
// how specifically it named the actor (0: not at all), or ok false when
// the base provision does not match. A nested provision is an exception
// to its parent; among matching siblings the later one wins.
func (p *Provision) evaluate(r Request, depth int) (permit bool, actorMatch int, ok bool) {
	if !p.matches(r) {
		return false, 0, false
	}
	permit = p.Permit
	if len(p.Actors) > 0 {
		actorMatch = depth + 1
	}
	for i := range p.Provisions {
		if np, na, nok := p.Provisions[i].evaluate(r, depth+1); nok {
			permit = np
			actorMatch = max(actorMatch, na)
		}
	}
	return permit, actorMatch, true
}

// EvaluateConsents applies a patient's consents to r, as FHIR R4 defines
// them: each consent in force whose base provision matches gives the
// rule of its deepest matching provision; among several, the one that
// names the actor most specifically wins, then the most recent. It
// returns the outcome and the id of the deciding consent.
func EvaluateConsents(cs []Consent, r Request) (outcome int, id string) {
	bestMatch, best := -1, -1
	var bestDate time.Time
	for i := range cs {
		c := &cs[i]
		if (!c.From.IsZero() && r.At.Before(c.From)) || (!c.To.IsZero() && !r.At.Before(c.To)) {
			continue
		}
		permit, actorMatch, ok := c.Provision.evaluate(r, 0)
		if !ok || (c.Delegation && permit) {
			continue
		}
		if c.Delegation {
			// A grant's exception denies whatever any other consent says.
			return ConsentDeny, c.ID
		}
		if actorMatch > bestMatch || (actorMatch == bestMatch && c.Date.After(bestDate)) {
			bestMatch, best, bestDate = actorMatch, i, c.Date
			outcome = ConsentDeny
			if permit {
				outcome = ConsentPermit
			}
		}
	}
	if best < 0 {
		return ConsentNone, ""
	}
	return outcome, cs[best].ID
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// Actors are the keys a consent's actor may name the principal by: the
// person ("Person/ID"), a clinician's Practitioner, a caregiver's
// RelatedPerson, an app's client ("Device/CLIENT").
func (p Principal) Actors() []string {
	var out []string
	if p.User != "" {
		out = append(out, p.User)
	}
	if p.Practitioner != "" {
		out = append(out, p.Practitioner)
	}
	if p.Proxy != nil && p.Proxy.RelatedPerson != "" {
		out = append(out, p.Proxy.RelatedPerson)
	}
	if p.Client != "" {
		out = append(out, "Device/"+p.Client)
	}
	if p.Link != nil {
		out = append(out, "urn:carefront:share-link|"+p.Link.ID)
	}
	return out
}

// purpose is the principal's purpose of use: treatment for a clinician;
// none for the patient and the people they authorize.
func (p Principal) purpose() string {
	if p.Role == RoleClinician {
		return "TREAT"
	}
	return ""
}

// hidden is Decision.Hide for a search of typ by p: the labels every
// resource carrying one of is refused to p by a rule that looks at
// nothing else. The patient and their own share links hide nothing.
func hidden(p Principal, typ string) []string {
	if p.Proxy == nil && p.Role != RoleClinician {
		return nil
	}
	var out []string
	add := func(ls ...string) {
		for _, l := range ls {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	if p.Proxy != nil && p.Proxy.HidesSensitive(p.At) {
		for _, c := range sensitiveLabels {
			add(actCode + "|" + c)
		}
		add(confidentiality+"|R", confidentiality+"|V")
	}
	if !part2Named(p) {
		add(actCode + "|" + Part2)
	}
	if p.Policy != nil {
		add(neverShared(p.Policy.Consents, Request{Actors: p.Actors(), Action: "access", Purpose: p.purpose(), Type: typ, At: p.At})...)
	}
	slices.Sort(out)
	return out
}

// part2Named reports whether any consent (not a caregiver's grant) could
// let p see a Part 2 record: one with a permit naming one of p's actors.
func part2Named(p Principal) bool {
	if p.Policy == nil {
		return false
	}
	actors := p.Actors()
	for i := range p.Policy.Consents {
		c := &p.Policy.Consents[i]
		if !c.Delegation && namesActor(p.Policy.Consents[i:i+1], c.ID, actors) {
			return true
		}
	}
	return false
}

// neverShared gives the labels a caregiver grant's exceptions deny for
// every resource of r.Type: a delegation in force whose base provision
// matches r on its own (no codes or labels of its own), and an exception
// conditioned on labels alone, with no exception of its own and no later
// sibling that could permit. (A delegation's exception denies whatever
// other consents say: EvaluateConsents.)
func neverShared(cs []Consent, r Request) []string {
	var out []string
	for i := range cs {
		c := &cs[i]
		if !c.Delegation || (!c.From.IsZero() && r.At.Before(c.From)) || (!c.To.IsZero() && !r.At.Before(c.To)) || !c.Provision.matches(r) {
			continue
		}
		kids := c.Provision.Provisions
		for j := range kids {
			d := &kids[j]
			if d.Permit || len(d.Labels) == 0 || len(d.Codes) > 0 || len(d.Provisions) > 0 {
				continue
			}
			withLabels := r
			withLabels.Labels = d.Labels
			if !d.matches(withLabels) {
				continue
			}
			later := true
			for k := j + 1; k < len(kids); k++ {
				if kids[k].Permit || len(kids[k].Provisions) > 0 {
					later = false
				}
			}
			if later {
				out = append(out, d.Labels...)
			}
		}
	}
	return out
}
