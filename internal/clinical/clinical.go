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
}

// Request carries what the audit record needs about the request.
type Request struct {
	Principal access.Principal
	RequestID string
}

// Read returns one resource if the principal may see it. A resource they
// may not see is reported exactly as a missing one, so its existence does
// not leak; the audit record keeps the true reason.
func (g *Gateway) Read(ctx context.Context, req Request, typ, id string) (*fhir.Resource, error) {
	rec := g.record(req, audit.SubtypeRead, audit.Read)
	rec.Entities = []audit.Entity{{What: typ + "/" + id}}
	r, err := g.Source.Read(ctx, typ, id)
	if err != nil {
		return nil, g.fail(ctx, rec, err)
	}
	t, err := target(r)
	if err != nil {
		return nil, g.fail(ctx, rec, err)
	}
	d := access.Decide(ctx, req.Principal, access.Read, t)
	rec.Reason = d.Reason
	if len(t.Patients) > 0 {
		rec.Patient = "Patient/" + t.Patients[0]
		if d.Permit && req.Principal.Patient != "" && slices.Contains(t.Patients, req.Principal.Patient) {
			rec.Patient = "Patient/" + req.Principal.Patient
		}
	}
	if !d.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, d.Reason
		if err := g.Audit.Append(ctx, rec); err != nil {
			return nil, auditFailed(err)
		}
		return nil, apperr.New(apperr.NotFound, "%s/%s is not known", typ, id)
	}
	if err := g.Audit.Append(ctx, rec); err != nil {
		return nil, auditFailed(err)
	}
	return r, nil
}

// Search runs q limited to what the principal may see: the decision
// narrows the query to their compartment before it runs, and each result
// is checked again (an upstream server might not honour the narrowing).
//
// It is audited as IHE BALP PatientQuery: the query itself (identifying
// values redacted) and one record per patient whose data was returned, so
// each patient finds the search in their own access log; the returned
// resources are not listed.
func (g *Gateway) Search(ctx context.Context, req Request, q *fhir.Query) (*fhir.Page, error) {
	rec := g.record(req, audit.SubtypeSearch, audit.Execute)
	rec.Query = q.Type + "?" + q.Encode("")
	d := access.Decide(ctx, req.Principal, access.Search, access.Target{Type: q.Type})
	rec.Reason = d.Reason
	if !d.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, d.Reason
		if err := g.Audit.Append(ctx, rec); err != nil {
			return nil, auditFailed(err)
		}
		return nil, apperr.New(apperr.Forbidden, "you may not search %s records", q.Type)
	}
	nq := *q
	nq.Compartment = d.Compartment
	if d.Compartment != "" {
		rec.Patient = "Patient/" + d.Compartment
	}
	page, err := g.Source.Search(ctx, &nq)
	if err != nil {
		return nil, g.fail(ctx, rec, err)
	}
	out := &fhir.Page{Total: page.Total, Next: page.Next}
	var patients []string // whose data is returned, in order
	keep := func(r *fhir.Resource) (bool, error) {
		t, err := target(r)
		if err != nil {
			return false, err
		}
		if !access.Decide(ctx, req.Principal, access.Read, t).Permit {
			return false, nil
		}
		for _, p := range t.Patients {
			if !slices.Contains(patients, p) {
				patients = append(patients, p)
			}
		}
		return true, nil
	}
	for _, r := range page.Matches {
		ok, err := keep(r)
		if err != nil {
			return nil, g.fail(ctx, rec, err)
		}
		if !ok {
			// The source returned what the query excluded: never show it,
			// and do not trust its total.
			out.Total = nil
			continue
		}
		out.Matches = append(out.Matches, r)
	}
	for _, r := range page.Included {
		ok, err := keep(r)
		if err != nil {
			return nil, g.fail(ctx, rec, err)
		}
		if ok {
			out.Included = append(out.Included, r)
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
	if err := g.Audit.AppendAll(ctx, recs...); err != nil {
		return nil, auditFailed(err)
	}
	return out, nil
}

func (g *Gateway) record(req Request, sub audit.Coding, action audit.Action) audit.Record {
	p := req.Principal
	return audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{sub}, Action: action, Outcome: audit.Success,
		User: p.User, Client: p.Client, Address: p.Address, RequestID: req.RequestID}
}

// fail audits a failed access and returns err (or the audit failure).
func (g *Gateway) fail(ctx context.Context, rec audit.Record, err error) error {
	rec.Outcome, rec.Reason = audit.MinorFailure, string(apperr.CodeOf(err))
	if apperr.CodeOf(err) == apperr.Internal || IsUnavailable(err) {
		rec.Outcome = audit.SeriousFailure
	}
	if aerr := g.Audit.Append(ctx, rec); aerr != nil {
		return auditFailed(aerr)
	}
	return err
}

func auditFailed(err error) error {
	return apperr.Wrap(err, apperr.Internal, "the access could not be recorded, so it was not made")
}

// target describes a resource for Decide: its compartment and labels,
// computed from its content so that it holds for upstream data too.
func target(r *fhir.Resource) (access.Target, error) {
	tree, err := fhir.Decode(r.Raw)
	if err != nil {
		return access.Target{}, apperr.Wrap(err, apperr.Internal, "a stored resource could not be read")
	}
	return access.Target{Type: r.Type, ID: r.ID, Patients: fhir.Compartments(r.Type, r.ID, tree), Labels: fhir.SecurityLabels(tree)}, nil
}
