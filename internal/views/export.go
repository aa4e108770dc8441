package views

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// exportLimit bounds the resources of one type an export reads: past it
// the download is refused rather than given incomplete.
const exportLimit = 100000

// Export is everything of the patient's record the person may see, as a
// FHIR R4 collection Bundle: their Patient resource and every resource of
// their compartment that access.Decide permits (held results excluded).
// It is audited as one Export with the count of resources.
func (b *Builder) Export(ctx context.Context, req clinical.Request) (*fhir.Bundle, error) {
	s, err := b.open(ctx, req, "export", "")
	if err != nil {
		return nil, err
	}
	out, err := s.export(ctx, req.Principal.Patient)
	if err == nil {
		s.v.Exported(len(out.Entry))
	}
	return done(ctx, s, out, err)
}

// Shared is what a share link holds: the patient's Patient resource and
// every resource of the given types the link's principal may see, as a
// FHIR R4 collection Bundle, built afresh at each request so the
// patient's current consent applies; audited as one Export.
func (b *Builder) Shared(ctx context.Context, req clinical.Request, types []string) (*fhir.Bundle, error) {
	s, err := b.open(ctx, req, "share-link", "")
	if err != nil {
		return nil, err
	}
	out, err := s.bundle(ctx, req.Principal.Patient, types)
	if err == nil {
		s.v.Exported(len(out.Entry))
	}
	return done(ctx, s, out, err)
}

func (s *session) export(ctx context.Context, patient string) (*fhir.Bundle, error) {
	return s.bundle(ctx, patient, slices.DeleteFunc(fhir.CompartmentTypes(), func(t string) bool { return t == "Patient" }))
}

// bundle is the Patient and the resources of types of their compartment.
func (s *session) bundle(ctx context.Context, patient string, types []string) (*fhir.Bundle, error) {
	bundle := &fhir.Bundle{ResourceType: "Bundle", Type: "collection"}
	p, err := s.v.Read(ctx, "Patient", patient)
	if err != nil {
		return nil, err
	}
	bundle.Entry = append(bundle.Entry, &fhir.Entry{FullURL: p.Ref(), Resource: p.Raw})
	parts := make([][]*fhir.Entry, len(types))
	errs := make([]error, len(types))
	fns := make([]func(), len(types))
	for i, typ := range types {
		fns[i] = func() {
			if s.withheld(ctx, typ) {
				return
			}
			q, err := fhir.ParseQuery(typ, url.Values{}, false)
			if err != nil {
				errs[i] = err
				return
			}
			q.Count = fhir.MaxCount
			n := 0
			for {
				if n >= exportLimit {
					errs[i] = apperr.New(apperr.TooLarge, "Your record is too large to download here. Please ask your clinic for a copy.")
					return
				}
				page, err := s.v.Search(ctx, q)
				if err != nil {
					errs[i] = err
					return
				}
				for _, r := range page.Matches {
					parts[i] = append(parts[i], &fhir.Entry{FullURL: r.Ref(), Resource: json.RawMessage(r.Raw)})
				}
				n += len(page.Matches) + len(page.Held)
				if page.Next == "" {
					return
				}
				q.Cursor = page.Next
			}
		}
	}
	// A few at a time: an export is big, and other people's pages must
	// not wait behind it.
	for i := 0; i < len(fns); i += 4 {
		s.b.parallel(fns[i:min(i+4, len(fns))]...)
	}
	for i := range types {
		if errs[i] != nil {
			return nil, errs[i]
		}
		bundle.Entry = append(bundle.Entry, parts[i]...)
	}
	return bundle, nil
}

// Printable is the human-readable summary of the record for printing:
// the health summary, medicines, visits and recent results.
type Printable struct {
	Profile     *Profile     `json:"profile"`
	Summary     *Summary     `json:"summary"`
	Medications *Medications `json:"medications"`
	Visits      *Visits      `json:"visits"`
	Results     *Results     `json:"results"`
}

// Printable builds the printable summary, audited as one export.
func (b *Builder) Printable(ctx context.Context, req clinical.Request, lang string) (*Printable, error) {
	s, err := b.open(ctx, req, "export-summary", lang)
	if err != nil {
		return nil, err
	}
	out := &Printable{}
	errs := make([]error, 5)
	b.parallel(
		func() { out.Profile, errs[0] = s.profile(ctx, req.Principal.Patient) },
		func() { out.Summary, errs[1] = s.summary(ctx) },
		func() { out.Medications, errs[2] = s.medications(ctx, false) },
		func() { out.Visits, errs[3] = s.visits(ctx) },
		func() { out.Results, errs[4] = s.results(ctx, ResultsOptions{Lang: lang}) },
	)
	for _, e := range errs {
		if e != nil {
			return done[Printable](ctx, s, nil, e)
		}
	}
	s.v.Exported(int(s.found.Load()))
	return done(ctx, s, out, nil)
}
