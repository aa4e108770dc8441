package clinical

import (
	"context"
	"slices"
	"strings"
	"sync"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/fhir"
)

// View is the reads and searches of one portal view (the home page, the
// results list, ...), each decided as Read and Search decide, audited
// together as one record when the view closes: the view, the patient, the
// kinds of data it showed and how it ended. Its methods may be called
// from several goroutines (a view's independent queries run in parallel).
type View struct {
	g    *Gateway
	req  Request
	name string

	// mu guards the fields that follow.
	mu       sync.Mutex
	types    []string
	entities []audit.Entity
	outcome  audit.Outcome
	reason   string
	closed   bool
	// export, when set, records the view as an export of count resources.
	export bool
	count  int
}

// Exported marks the view as an export (a download of the record) of
// count resources: its record is an Export event with the count.
func (v *View) Exported(count int) {
	v.mu.Lock()
	v.export, v.count = true, count
	v.mu.Unlock()
}

// Open begins a view for req. Its Close writes the audit record; a view
// never closed was never shown, and its accesses are not recorded.
func (g *Gateway) Open(ctx context.Context, req Request, name string) (*View, error) {
	req, err := g.withPolicy(ctx, req)
	if err != nil {
		return nil, err
	}
	return &View{g: g, req: req, name: name, outcome: audit.Success}, nil
}

// Request is the request the view decides for, with the patient's
// policy loaded.
func (v *View) Request() Request { return v.req }

// Read is Gateway.Read within the view.
func (v *View) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	return v.g.read(ctx, v.req, typ, id, v.gather)
}

// Search is Gateway.Search within the view.
func (v *View) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	return v.g.search(ctx, v.req, q, v.gather)
}

// Types are the kinds of data the view has shown so far.
func (v *View) Types() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.types)
}

// Served records that the view showed data of types without reading it
// now: a view kept from a moment ago, shown again. The access is audited
// as if it were read.
func (v *View) Served(types []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, t := range types {
		if !slices.Contains(v.types, t) {
			v.types = append(v.types, t)
		}
	}
}

// gather folds an access's records into the view's one record: the worst
// outcome wins, with its reason; reads name their resource.
func (v *View) gather(_ context.Context, recs ...audit.Record) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return apperr.New(apperr.Internal, "view %s used after it closed", v.name)
	}
	for _, r := range recs {
		if severity(r.Outcome) > severity(v.outcome) {
			v.outcome, v.reason = r.Outcome, r.Reason
		}
		for _, e := range r.Entities {
			if !slices.Contains(v.entities, e) {
				v.entities = append(v.entities, e)
			}
		}
		if r.Outcome != audit.Success {
			continue
		}
		t := r.Query
		if i := strings.IndexByte(t, '?'); i >= 0 {
			t = t[:i]
		}
		if t == "" && len(r.Entities) > 0 {
			t, _, _ = fhir.ParseRef(r.Entities[0].What)
		}
		if t != "" && !slices.Contains(v.types, t) {
			v.types = append(v.types, t)
		}
	}
	return nil
}

func severity(o audit.Outcome) int {
	switch o {
	case audit.MinorFailure:
		return 1
	case audit.SeriousFailure:
		return 2
	case audit.MajorFailure:
		return 3
	}
	return 0
}

// Close writes the view's audit record. failed, when not nil, is how the
// view ended (a source that could not answer) if no access said worse.
// It returns an error when the record could not be written: the view must
// then not be shown.
func (v *View) Close(ctx context.Context, failed error) error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	rec := v.g.record(v.req, audit.SubtypeView, audit.Read)
	rec.Subtype = append(rec.Subtype, audit.ViewCoding(v.name))
	if v.export {
		rec.Type, rec.Count = audit.TypeExport, v.count
	}
	rec.Outcome, rec.Reason = v.outcome, v.reason
	if failed != nil && severity(audit.SeriousFailure) > severity(rec.Outcome) && (IsUnavailable(failed) || apperr.CodeOf(failed) == apperr.Internal) {
		rec.Outcome, rec.Reason = audit.SeriousFailure, string(apperr.CodeOf(failed))
	}
	rec.DataTypes = slices.Sorted(slices.Values(v.types))
	rec.Entities = v.entities
	if p := v.req.Principal.Patient; p != "" {
		rec.Patient = "Patient/" + p
	}
	v.mu.Unlock()
	if err := v.g.Audit.Append(ctx, rec); err != nil {
		return auditFailed(err)
	}
	return nil
}
