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

// EHR consent cache timings.
const (
	// DefaultEHRConsentTTL is how long an EHR's answer about a patient's
	// consents is used before it is asked again.
	DefaultEHRConsentTTL = time.Minute
	// ehrConsentStale is how long a good answer stands in for one the
	// EHR cannot give (it is down or slow); past it, requests that need
	// the consents fail.
	ehrConsentStale = 10 * time.Minute
	// ehrConsentErrorTTL is how long a failure is remembered, so a down
	// EHR is not asked again by every request.
	ehrConsentErrorTTL = 5 * time.Second
)

// maxEHRConsentPages bounds how many pages of Consents one patient's
// answer may take (100 each); an answer longer than that fails rather
// than being cut short.
const maxEHRConsentPages = 10

// maxEHRAnswers bounds the answers kept; past it the cache starts again.
const maxEHRAnswers = 20000

// ehrPrefix marks the ids of consents read from the EHR, so they never
// share an id with carefront's own.
const ehrPrefix = "ehr:"

// EHRConsents is, in upstream mode, the privacy Consents a health
// system's EHR keeps for a patient, merged into the policy carefront
// compiles from its own records (clinical.Gateway.Consents), so a
// consent recorded at the clinic binds the portal too. Consents bind
// everyone but the patient, so the gateway asks only for others. The EHR
// is asked outside any database transaction, at most once per TTL per
// patient; a consent changed there applies within the TTL (and the 15 s
// the home view is cached). An EHR with no Consent endpoint, or that
// rejects the search, has none; one that cannot answer is replaced by
// its last good answer for up to 10 minutes, then fails the request.
type EHRConsents struct {
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
	at       time.Time // of the last good answer
	consents []access.Consent
	failedAt time.Time // of the last failure, zero when the last try was good
	err      error
	// base and merged: the last policy merged and the result, so a
	// request whose policy has not moved gets the same pointer.
	base, merged *access.Policy
}

// Merge returns base with the EHR's consents for patient added. The
// policy returned is shared: callers must not change it.
func (e *EHRConsents) Merge(ctx context.Context, patient string, base *access.Policy) (*access.Policy, error) {
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
	fresh := a != nil && a.err == nil && now.Sub(a.at) < ttl && !now.Before(a.at)
	recentFailure := a != nil && a.err != nil && now.Sub(a.failedAt) < ehrConsentErrorTTL
	if !fresh && !recentFailure {
		cs, err := e.fetch(ctx, patient)
		next := &ehrAnswer{at: now, consents: cs}
		if err != nil {
			next = &ehrAnswer{failedAt: now, err: err}
			if a != nil && !a.at.IsZero() {
				next.at, next.consents = a.at, a.consents // the last good answer, while it may stand
			}
		}
		a = next
	}
	if a.err != nil && (a.at.IsZero() || now.Sub(a.at) >= ehrConsentStale) {
		e.store(patient, a)
		return nil, a.err
	}
	if a.base != base || a.merged == nil {
		a = &ehrAnswer{at: a.at, consents: a.consents, failedAt: a.failedAt, err: a.err, base: base, merged: base}
		if len(a.consents) > 0 {
			m := access.Policy{}
			if base != nil {
				m = *base
				m.Consents = slices.Clip(base.Consents)
			}
			m.Consents = append(m.Consents, a.consents...)
			a.merged = &m
		}
	}
	e.store(patient, a)
	return a.merged, nil
}

func (e *EHRConsents) store(patient string, a *ehrAnswer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answers == nil || len(e.answers) >= maxEHRAnswers {
		e.answers = map[string]*ehrAnswer{}
	}
	e.answers[patient] = a
}

// fetch reads the patient's active privacy Consents from the EHR (the
// search names the patient only, which every EHR with Consent search
// supports; status and scope are checked here).
func (e *EHRConsents) fetch(ctx context.Context, patient string) ([]access.Consent, error) {
	q, err := fhir.ParseQuery("Consent", url.Values{"_count": {"100"}}, false)
	if err != nil {
		return nil, err
	}
	q.Compartment = patient
	var out []access.Consent
	for page := range maxEHRConsentPages {
		res, err := e.EHR.Search(ctx, q)
		switch code := apperr.CodeOf(err); {
		case err == nil:
		case page == 0 && (code == apperr.Invalid || code == apperr.NotFound):
			return nil, nil // the EHR offers no Consent search
		default:
			return nil, apperr.Wrap(err, apperr.Unavailable, "the health system's consents could not be read")
		}
		for _, r := range res.Matches {
			t, err := r.Tree()
			if err != nil {
				return nil, apperr.Wrap(err, apperr.Unavailable, "the health system sent a consent carefront cannot read")
			}
			if c, ok := ParseConsent(t); ok && slices.Contains(fhir.Compartments("Consent", r.ID, t), patient) {
				c.ID = ehrPrefix + c.ID
				c.Delegation = false // carefront's own grants live in its own store
				out = append(out, c)
			}
		}
		if res.Next == "" {
			return out, nil
		}
		q.Cursor = res.Next
	}
	return nil, apperr.New(apperr.Unavailable, "the health system holds more consents for one patient than carefront reads (%d pages)", maxEHRConsentPages)
}
