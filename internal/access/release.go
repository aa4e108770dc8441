package access

import (
	"slices"
	"time"
)

// Release of results, by the patient's choice. Final results are shown at
// once, as the Cures Act expects; results that are not final (registered,
// preliminary) are not shown at all. A patient may choose, per category,
// to wait until their care team has reviewed a result, at most some days
// after it was issued. The rule is an obligation of the decision, so every
// path that shows results (pages, downloads, share links, the FHIR API for
// apps) applies it the same way, and it is decided at read time from the
// result's dates and the clock: no job releases anything.

// Result categories a patient may choose a release for. Results outside
// them (vital signs, surveys, measurements the patient took) always show
// at once.
const (
	CategoryLab       = "lab"
	CategoryImaging   = "imaging"
	CategoryPathology = "pathology"
	CategoryGenetic   = "genetic"
)

// ReleaseCategories are the categories, in the order the settings page
// lists them.
var ReleaseCategories = []string{CategoryLab, CategoryImaging, CategoryPathology, CategoryGenetic}

// MaxWaitDays bounds how long a patient may ask a result to wait.
const MaxWaitDays = 30

// Policy is what a patient has decided about their own record: the
// choices every decision about it applies. Its Version is the patient's
// access version (see Store).
type Policy struct {
	Version int64
	// Wait is, per category, how many days at most a final result waits
	// for review before it shows; a category not listed shows at once.
	Wait map[string]int
	// Shown are the held results ("Observation/1") the patient asked to
	// see anyway.
	Shown []string
	// Proxies are the caregiver grants not revoked (package consent loads
	// them).
	Proxies []Proxy
	// Consents are the patient's privacy consents in force or to come
	// (package consent loads them from the Consent resources).
	Consents []Consent
}

// ResultFacts are what the release rule reads of a result (an Observation
// or a DiagnosticReport).
type ResultFacts struct {
	Status     string
	Categories []string // release categories (lab, imaging, ...) it is in
	// Issued is when the result was made available (issued, else the
	// effective time); zero when the record gives neither.
	Issued time.Time
	// Reviewed reports whether the record says a clinician has reviewed
	// it (DiagnosticReport.resultsInterpreter, or carefront's review tag).
	Reviewed bool
}

// finalStatuses are the statuses of results that show (a report kept as a
// document: its docStatus).
var finalStatuses = []string{"final", "amended", "corrected", "appended"}

// Obligation is what the enforcement point must do with a permitted
// resource before it shows it.
type Obligation struct {
	// HoldUntil, when not zero, withholds the resource until that time
	// unless the patient asks to see it: the patient chose to wait for
	// review, and the result has not been reviewed.
	HoldUntil time.Time
}

// Holds reports whether the resource is withheld at now.
func (o Obligation) Holds(now time.Time) bool {
	return !o.HoldUntil.IsZero() && now.Before(o.HoldUntil)
}

// ReasonNotFinal is the reason a result that is not final is not shown.
const ReasonNotFinal = "result-not-final"

// release applies the patient's choices to a result the principal may
// otherwise read: a result that is not final is denied; one in a category
// the patient chose to wait for, not yet reviewed nor asked for, carries
// a hold until its wait is over.
func release(p *Policy, t Target, d Decision) Decision {
	r := t.Result
	if r == nil || !d.Permit {
		return d
	}
	if !slices.Contains(finalStatuses, r.Status) {
		return Decision{Reason: ReasonNotFinal}
	}
	if p == nil || r.Reviewed || slices.Contains(p.Shown, t.Type+"/"+t.ID) {
		return d
	}
	days := 0
	for _, c := range r.Categories {
		days = max(days, p.Wait[c])
	}
	if days == 0 {
		return d
	}
	issued := r.Issued
	if issued.IsZero() {
		return d // no date to count from: shown rather than held for ever
	}
	d.Obligation.HoldUntil = issued.Add(time.Duration(min(days, MaxWaitDays)) * 24 * time.Hour)
	return d
}
