package consent

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/fhir"
)

// DefaultEHRConsentTTL is how long an EHR's answer about a patient's
// consents is used before it is asked again.
const DefaultEHRConsentTTL = time.Minute

// maxEHRConsentPages bounds how many pages of Consents one patient's
// answer may take (100 each).
const maxEHRConsentPages = 5

// EHRConsents is the policy source in upstream mode: a patient's policy
// as carefront compiled it from its own records (Policies: grants, the
// Consents it keeps, release choices), with the active privacy Consents
// the health system's EHR keeps for the patient merged in, so a consent
// recorded at the clinic binds the portal too. The EHR is asked outside
// any database transaction, at most once per TTL per patient; a consent
// changed there applies within the TTL. An EHR that does not offer
// Consent search (it answers the search as invalid or unknown) has none;
// one that cannot answer fails the request, as its data could not be
// read either.
type EHRConsents struct {
	Policies interface {
		Policy(ctx context.Context, patient string) (*access.Policy, error)
	}
	// EHR is the health system's FHIR API (clinical/upstream).
	EHR interface {
		Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error)
	}
	// TTL is how long an answer is used; 0 is DefaultEHRConsentTTL.
	TTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu      sync.Mutex
	answers map[string]*ehrAnswer // by patient
}

type ehrAnswer struct {
	at       time.Time
	consents []access.Consent
	// base and merged: the last own policy merged, and the result, so
	// a request whose own policy has not moved gets the same pointer.
	base, merged *access.Policy
}

// maxEHRAnswers bounds the answers kept; past it the cache starts again.
const maxEHRAnswers = 20000

// Policy returns the patient's policy with the EHR's consents merged in.
// The policy returned is shared: callers must not change it.
func (e *EHRConsents) Policy(ctx context.Context, patient string) (*access.Policy, error) {
	base, err := e.Policies.Policy(ctx, patient)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	ttl := e.TTL
	if ttl <= 0 {
		ttl = DefaultEHRConsentTTL
	}
	e.mu.Lock()
	a := e.answers[patient]
	e.mu.Unlock()
	if a == nil || now.Sub(a.at) >= ttl || now.Before(a.at) {
		cs, err := e.fetch(ctx, patient)
		if err != nil {
			return nil, err
		}
		a = &ehrAnswer{at: now, consents: cs}
	}
	if a.base != base {
		a = &ehrAnswer{at: a.at, consents: a.consents, base: base, merged: base}
		if len(a.consents) > 0 {
			m := *base
			m.Consents = append(slices.Clip(base.Consents), a.consents...)
			a.merged = &m
		}
	}
	e.mu.Lock()
	if e.answers == nil || len(e.answers) >= maxEHRAnswers {
		e.answers = map[string]*ehrAnswer{}
	}
	e.answers[patient] = a
	e.mu.Unlock()
	return a.merged, nil
}

// fetch reads the patient's active privacy Consents from the EHR.
func (e *EHRConsents) fetch(ctx context.Context, patient string) ([]access.Consent, error) {
	q, err := fhir.ParseQuery("Consent", url.Values{"status": {"active"}, "_count": {"100"}}, false)
	if err != nil {
		return nil, err
	}
	q.Compartment = patient
	var out []access.Consent
	for range maxEHRConsentPages {
		page, err := e.EHR.Search(ctx, q)
		switch apperr.CodeOf(err) {
		case apperr.Invalid, apperr.NotFound:
			return nil, nil // the EHR keeps no Consents it will show
		}
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Unavailable, "the health system's consents could not be read")
		}
		for _, r := range page.Matches {
			t, err := r.Tree()
			if err != nil {
				continue
			}
			if c, ok := ParseConsent(t); ok && slices.Contains(fhir.Compartments("Consent", r.ID, t), patient) {
				c.Delegation = false // carefront's own grants live in its own store
				out = append(out, c)
			}
		}
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
	return out, nil
}
