// Package clinical is how every feature reaches clinical data. Source is a
// FHIR R4 data source: the embedded store (clinical/store) or a health
// system's EHR (clinical/upstream). Gateway puts access.Decide and the
// audit trail in front of a Source: features acting for a person call the
// Gateway, never a Source directly.
package clinical

import (
	"context"
	"errors"
	"slices"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/fhir"
)

// Source is a FHIR R4 data source. Errors are apperr-coded: NotFound, Gone,
// Invalid, and Unavailable when an upstream server cannot answer.
type Source interface {
	Read(ctx context.Context, typ, id string) (*fhir.Resource, error)
	Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error)
}

// ErrUnavailable is matched by errors.Is on every Unavailable error from
// a Source, so views can show what they have with a notice.
var ErrUnavailable = errors.New("clinical data source unavailable")

// IsUnavailable reports whether err means the source could not answer.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || apperr.CodeOf(err) == apperr.Unavailable
}

// Gateway decides and audits every read and search made for a person.
type Gateway struct {
	Source Source
	Audit  *audit.Writer
	// Policies loads the choices of the patient whose data is acted on
	// (their release of results); nil applies none.
	Policies Policies
	// Now is the clock held results are released by; nil is time.Now.
	Now func() time.Time
	// CareMonths is how far back an Appointment or Encounter with a
	// clinician makes a care relationship; 0 is DefaultCareMonths.
	CareMonths int
	// Labeler gives sensitivity labels from a resource's codes
	// (consent.Labeler), beside those its source gave, wherever it is
	// read, so upstream data is labelled too; nil adds none.
	Labeler Labeler
	// Consents adds the consents kept outside carefront's own store (an
	// EHR's: consent.EHRConsents) to the policy of anyone acting on a
	// patient's record but the patient, whom consents do not bind; nil
	// adds none.
	Consents Consents
}

// Consents merges consents kept elsewhere into a patient's policy.
type Consents interface {
	Merge(ctx context.Context, patient string, base *access.Policy) (*access.Policy, error)
}

// Labeler labels a decoded resource by its codes.
type Labeler interface {
	Labels(typ string, tree map[string]any) []string
}

// Policies loads a patient's access policy (access.Store).
type Policies interface {
	Policy(ctx context.Context, patient string) (*access.Policy, error)
}

// Request carries what the audit record needs about the request.
type Request struct {
	Principal access.Principal
	RequestID string
	// Token is the id of the access token an app's request came with
	// (oauth.TokenInfo.ID), for the audit record; "" otherwise.
	Token string
	// Pool is the messaging pool through which a staff member reaches the
	// patient: the pool of a thread, set by messaging, never from input.
	// With it a member of that pool may read the Patient resource (access
	// decidePool), nothing more.
	Pool string
}

// HeldError is returned for a result the patient chose to see only after
// their care team has reviewed it, not yet reviewed: its existence is no
// secret to them, its content waits. Until is when it shows by itself.
type HeldError struct {
	Ref   string
	Until time.Time
}

func (e *HeldError) Error() string { return e.Ref + " is held for review" }

// Unwrap gives the user-safe coded error: a page that cannot show a held
// result says it waits (403), never that something failed.
func (e *HeldError) Unwrap() error {
	return apperr.New(apperr.Forbidden, "This result is ready and waits, as you asked, for your care team's review.")
}

// sink receives an access's audit records: appended to the chain at once,
// or gathered into one view record (View).
type sink func(ctx context.Context, recs ...audit.Record) error

func (g *Gateway) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Clock returns the gateway's time now (its Now, else the system's).
func (g *Gateway) Clock() time.Time { return g.now() }

// Refused audits a request refused before any data was read (a caregiver
// whose access has ended naming the record), as a failed read of the
// patient's record with the reason.
func (g *Gateway) Refused(ctx context.Context, req Request, reason string) error {
	rec := g.record(req, audit.SubtypeRead, audit.Read)
	rec.Outcome, rec.Reason = audit.MinorFailure, reason
	if req.Principal.Patient != "" {
		rec.Patient = "Patient/" + req.Principal.Patient
	}
	if err := g.Audit.Append(ctx, rec); err != nil {
		return auditFailed(err)
	}
	return nil
}

// withPolicy loads the patient's policy into the principal when the
// request does not carry one.
func (g *Gateway) withPolicy(ctx context.Context, req Request) (Request, error) {
	p := &req.Principal
	if p.At.IsZero() {
		p.At = g.now()
	}
	if p.Policy == nil && p.Patient != "" && g.Policies != nil {
		pol, err := g.Policies.Policy(ctx, p.Patient)
		if err != nil {
			return req, apperr.Wrap(err, apperr.Internal, "the access policy could not be read")
		}
		p.Policy = pol
	}
	self := p.Role == "" && !p.Caregiver && p.Proxy == nil // the patient, or their own share link
	if g.Consents != nil && p.Patient != "" && !self {
		pol, err := g.Consents.Merge(ctx, p.Patient, p.Policy)
		if err != nil {
			return req, err
		}
		p.Policy = pol
	}
	if p.Caregiver && p.Proxy == nil {
		p.Proxy = p.Policy.ProxyFor(p.User) // a caregiver's relationship is their grant in the policy
	}
	if err := g.withCare(ctx, p); err != nil {
		return req, apperr.Wrap(err, apperr.Internal, "the care relationship could not be checked")
	}
	return req, nil
}

// Decide answers whether req's principal may take action a on t, for data
// carefront keeps beside the clinical source (messages): the principal is
// prepared as for a read through the gateway (the patient's policy and
// consents, a caregiver's grant, a clinician's care relationship). It
// returns the prepared request; the caller audits what it then does.
func (g *Gateway) Decide(ctx context.Context, req Request, a access.Action, t access.Target) (access.Decision, Request, error) {
	req, err := g.withPolicy(ctx, req)
	if err != nil {
		return access.Decision{}, req, err
	}
	return access.Decide(ctx, req.Principal, a, t), req, nil
}

// MayWrite reports whether the principal may write resources of typ to
// the record they act for (a caregiver needs the kind in their grant;
// apps and share links never write), before a form is offered. A refusal
// is audited with its reason.
func (g *Gateway) MayWrite(ctx context.Context, req Request, typ string) (bool, error) {
	patient := req.Principal.Patient
	dec, req, err := g.Decide(ctx, req, access.Write, access.Target{Type: typ, Patients: []string{patient}})
	if err != nil || dec.Permit {
		return dec.Permit, err
	}
	rec := g.record(req, audit.SubtypeCreate, audit.Create)
	rec.Outcome, rec.Reason = audit.MinorFailure, dec.Reason
	if patient != "" {
		rec.Patient = "Patient/" + patient
	}
	return false, g.Audit.Append(ctx, rec)
}

// Read returns one resource if the principal may see it. A resource they
// may not see is reported exactly as a missing one, so its existence does
// not leak; the audit record keeps the true reason. A result held for
// review is a *HeldError.
func (g *Gateway) Read(ctx context.Context, req Request, typ, id string) (*fhir.Resource, error) {
	req, err := g.withPolicy(ctx, req)
	if err != nil {
		return nil, err
	}
	return g.read(ctx, req, typ, id, g.appendNow)
}

func (g *Gateway) appendNow(ctx context.Context, recs ...audit.Record) error {
	return g.Audit.AppendAll(ctx, recs...)
}

func (g *Gateway) read(ctx context.Context, req Request, typ, id string, out sink) (*fhir.Resource, error) {
	rec := g.record(req, audit.SubtypeRead, audit.Read)
	rec.Entities = []audit.Entity{{What: typ + "/" + id}}
	r, err := g.Source.Read(ctx, typ, id)
	if err != nil {
		return nil, g.fail(ctx, rec, err, out)
	}
	if err := g.judge(ctx, req, r, &rec, out); err != nil {
		return nil, err
	}
	if err := out(ctx, rec); err != nil {
		return nil, auditFailed(err)
	}
	return r, nil
}

// judge decides whether req may see r, filling rec (the patient, the
// reason). A refusal is audited through out and answered as a missing
// resource; a result held for review is audited and a *HeldError.
func (g *Gateway) judge(ctx context.Context, req Request, r *fhir.Resource, rec *audit.Record, out sink) error {
	t, err := g.target(r)
	if err != nil {
		return g.fail(ctx, *rec, err, out)
	}
	if r.Type == "Binary" {
		if t.Patients, err = g.binaryPatients(ctx, r); err != nil {
			return g.fail(ctx, *rec, err, out)
		}
	}
	if r.Type == "Patient" {
		t.Pool = req.Pool
	}
	d := access.Decide(ctx, req.Principal, access.Read, t)
	rec.Reason = d.Reason
	if len(t.Patients) > 0 {
		rec.Patient = "Patient/" + t.Patients[0]
		if req.Principal.Patient != "" && slices.Contains(t.Patients, req.Principal.Patient) {
			rec.Patient = "Patient/" + req.Principal.Patient
		}
	}
	if !d.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, d.Reason
		if err := out(ctx, *rec); err != nil {
			return auditFailed(err)
		}
		return apperr.New(apperr.NotFound, "%s/%s is not known", r.Type, r.ID)
	}
	held := d.Obligation.Holds(g.now())
	if r.Type == "Observation" && waits(req.Principal) {
		reports, err := g.reportHolds(ctx, req, []*fhir.Resource{r}, g.now())
		if err != nil {
			return g.fail(ctx, *rec, err, out)
		}
		if h, ok := reports[r.Ref()]; ok {
			held = h // released with its report
		}
	}
	if held {
		rec.Reason = "held-for-review"
		if err := out(ctx, *rec); err != nil {
			return auditFailed(err)
		}
		return &HeldError{Ref: r.Ref(), Until: d.Obligation.HoldUntil}
	}
	return nil
}

// VersionReader is a Source that keeps earlier versions of resources
// (carefront's own store).
type VersionReader interface {
	VRead(ctx context.Context, typ, id, version string) (*fhir.Resource, error)
}

// VRead returns one version of a resource if the principal may see it:
// the resource as it is now and the version asked for are both decided,
// so an earlier version never shows to someone the resource is hidden
// from now, nor a version that was hidden when it was written. From a
// source without versions only the current version can be read. It is
// audited once, as a vread. It returns the version asked for and the
// resource as it is now (for checks of the caller's own, such as an
// app's granted categories, which must hold for both).
func (g *Gateway) VRead(ctx context.Context, req Request, typ, id, version string) (old, cur *fhir.Resource, err error) {
	req, err = g.withPolicy(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	rec := g.record(req, audit.SubtypeVRead, audit.Read)
	rec.Entities = []audit.Entity{{What: typ + "/" + id}}
	cur, err = g.Source.Read(ctx, typ, id)
	if err != nil {
		return nil, nil, g.fail(ctx, rec, err, g.appendNow)
	}
	if err := g.judge(ctx, req, cur, &rec, g.appendNow); err != nil {
		return nil, nil, err
	}
	old = cur
	if vr, ok := g.Source.(VersionReader); ok {
		if old, err = vr.VRead(ctx, typ, id, version); err != nil {
			return nil, nil, g.fail(ctx, rec, err, g.appendNow)
		}
		if err := g.judge(ctx, req, old, &rec, g.appendNow); err != nil {
			return nil, nil, err
		}
	} else if cur.VersionID != version {
		return nil, nil, g.fail(ctx, rec, apperr.New(apperr.NotFound, "%s/%s/_history/%s is not known", typ, id, version), g.appendNow)
	}
	if err := g.appendNow(ctx, rec); err != nil {
		return nil, nil, auditFailed(err)
	}
	return old, cur, nil
}

// Search runs q limited to what the principal may see: the decision
// narrows the query to their compartment before it runs, and each result
// is checked again (an upstream server might not honour the narrowing).
// Results held for review are in the page's Held, never its Matches.
//
// It is audited as IHE BALP PatientQuery: the query itself (identifying
// values redacted) and one record per patient whose data was returned, so
// each patient finds the search in their own access log; the returned
// resources are not listed.
func (g *Gateway) Search(ctx context.Context, req Request, q *fhir.Query) (*fhir.Page, error) {
	req, err := g.withPolicy(ctx, req)
	if err != nil {
		return nil, err
	}
	return g.search(ctx, req, q, g.appendNow)
}

func (g *Gateway) search(ctx context.Context, req Request, q *fhir.Query, out sink) (*fhir.Page, error) {
	rec := g.record(req, audit.SubtypeSearch, audit.Execute)
	rec.Query = q.Type + "?" + q.Encode("")
	d := access.Decide(ctx, req.Principal, access.Search, access.Target{Type: q.Type})
	rec.Reason = d.Reason
	if !d.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, d.Reason
		if err := out(ctx, rec); err != nil {
			return nil, auditFailed(err)
		}
		return nil, apperr.New(apperr.Forbidden, "you may not search %s records", q.Type)
	}
	nq := *q
	nq.Compartment = d.Compartment
	nq.ExcludeLabels = d.Hide
	if d.Compartment != "" {
		rec.Patient = "Patient/" + d.Compartment
	}
	page, err := g.Source.Search(ctx, &nq)
	if err != nil {
		return nil, g.fail(ctx, rec, err, out)
	}
	now := g.now()
	result := &fhir.Page{Total: page.Total, Next: page.Next}
	var patients []string // whose data is returned, in order
	// keep decides one returned resource: shown, held or dropped.
	keep := func(r *fhir.Resource) (show, held bool, err error) {
		t, err := g.target(r)
		if err != nil {
			return false, false, err
		}
		rd := access.Decide(ctx, req.Principal, access.Read, t)
		if !rd.Permit {
			return false, false, nil
		}
		for _, p := range t.Patients {
			if !slices.Contains(patients, p) {
				patients = append(patients, p)
			}
		}
		if rd.Obligation.Holds(now) {
			return false, true, nil
		}
		return true, false, nil
	}
	// Each match shown or held, in the source's order.
	type decided struct {
		r    *fhir.Resource
		held bool
	}
	var kept []decided
	for _, r := range page.Matches {
		show, held, err := keep(r)
		if err != nil {
			return nil, g.fail(ctx, rec, err, out)
		}
		if show || held {
			kept = append(kept, decided{r, held})
		}
		if !show {
			// Held, or what the query excluded, or a result that is not
			// final: never shown, and the source's total is not to be
			// trusted.
			result.Total = nil
		}
	}
	if q.Type == "Observation" && waits(req.Principal) && len(kept) > 0 {
		rs := make([]*fhir.Resource, len(kept))
		for i, k := range kept {
			rs[i] = k.r
		}
		reports, err := g.reportHolds(ctx, req, rs, now)
		if err != nil {
			return nil, g.fail(ctx, rec, err, out)
		}
		for i, k := range kept {
			if h, ok := reports[k.r.Ref()]; ok {
				kept[i].held = h // released with its report
				if h {
					result.Total = nil
				}
			}
		}
	}
	for _, k := range kept {
		if k.held {
			result.Held = append(result.Held, k.r)
		} else {
			result.Matches = append(result.Matches, k.r)
		}
	}
	for _, r := range page.Included {
		show, _, err := keep(r)
		if err != nil {
			return nil, g.fail(ctx, rec, err, out)
		}
		if show {
			result.Included = append(result.Included, r)
		}
	}

	recs := []audit.Record{rec}
	if len(patients) > 0 {
		recs = recs[:0]
		for _, p := range patients {
			r := rec
			r.Patient = "Patient/" + p
			recs = append(recs, r)
		}
	}
	if err := out(ctx, recs...); err != nil {
		return nil, auditFailed(err)
	}
	return result, nil
}

// AuditRecord is the audit record of req's access as the gateway writes
// it (the person, their role or the patient they act for, the app and the
// address), for a feature deciding with Decide.
func (g *Gateway) AuditRecord(req Request, sub audit.Coding, action audit.Action) audit.Record {
	return g.record(req, sub, action)
}

func (g *Gateway) record(req Request, sub audit.Coding, action audit.Action) audit.Record {
	p := req.Principal
	rec := audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{sub}, Action: action, Outcome: audit.Success,
		User: p.User, Client: p.Client, Token: req.Token, Address: p.Address, RequestID: req.RequestID}
	switch p.Role {
	case access.RoleClinician, access.RoleSupport, access.RoleSecurityOfficer, access.RoleAdmin:
		rec.UserName, rec.UserRole = p.Name, p.Role // staff: every read names them and their role
	}
	if p.Caregiver || p.Proxy != nil {
		rec.OnBehalf = "Patient/" + p.Patient // a caregiver acts on the patient's behalf
	}
	return rec
}

// fail audits a failed access and returns err (or the audit failure).
func (g *Gateway) fail(ctx context.Context, rec audit.Record, err error, out sink) error {
	rec.Outcome, rec.Reason = audit.MinorFailure, string(apperr.CodeOf(err))
	if apperr.CodeOf(err) == apperr.Internal || IsUnavailable(err) {
		rec.Outcome = audit.SeriousFailure
	}
	if aerr := out(ctx, rec); aerr != nil {
		return auditFailed(aerr)
	}
	return err
}

func auditFailed(err error) error {
	return apperr.Wrap(err, apperr.Internal, "the access could not be recorded, so it was not made")
}

// binaryPatients are the patients whose data a Binary is: those of the
// resource its securityContext names (a Patient, or a resource in their
// compartment, such as the DocumentReference it is attached to). A Binary
// with no securityContext belongs to no patient, and so to no one but
// operators.
func (g *Gateway) binaryPatients(ctx context.Context, r *fhir.Resource) ([]string, error) {
	tree, err := r.Tree()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "a stored resource could not be read")
	}
	sc, _ := tree["securityContext"].(map[string]any)
	ref, _ := sc["reference"].(string)
	typ, id, ok := fhir.ParseRef(ref)
	switch {
	case !ok:
		return nil, nil
	case typ == "Patient":
		return []string{id}, nil
	case !fhir.InPatientCompartment(typ):
		return nil, nil
	}
	owner, err := g.Source.Read(ctx, typ, id)
	if apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Gone {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := g.target(owner)
	if err != nil {
		return nil, err
	}
	return t.Patients, nil
}

// target describes a resource for Decide: its compartment and labels,
// computed from its content so that it holds for upstream data too.
func (g *Gateway) target(r *fhir.Resource) (access.Target, error) {
	tree, err := r.Tree()
	if err != nil {
		return access.Target{}, apperr.Wrap(err, apperr.Internal, "a stored resource could not be read")
	}
	labels := fhir.SecurityLabels(tree)
	if g.Labeler != nil {
		for _, l := range g.Labeler.Labels(r.Type, tree) {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
	}
	return access.Target{Type: r.Type, ID: r.ID, Patients: fhir.Compartments(r.Type, r.ID, tree),
		Labels: labels, Codes: codes(tree), Result: ResultFacts(r.Type, tree)}, nil
}

// codePaths are where a resource's own codes are, for consents that name
// codes.
var codePaths = []string{"code.coding", "valueCodeableConcept.coding", "medicationCodeableConcept.coding", "type.coding", "vaccineCode.coding"}

// codes are a resource's codes as "system|code".
func codes(tree map[string]any) []string {
	var out []string
	for _, path := range codePaths {
		for _, v := range fhir.Values(tree, path) {
			c, _ := v.(map[string]any)
			sys, _ := c["system"].(string)
			code, _ := c["code"].(string)
			if sys != "" && code != "" && !slices.Contains(out, sys+"|"+code) {
				out = append(out, sys+"|"+code)
			}
		}
	}
	return out
}
