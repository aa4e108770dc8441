package clinical

import (
	"context"
	"slices"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/fhir"
)

// OwnTypes are the types carefront writes itself in upstream mode: the
// visits patients book (Appointment, with the clinic's Schedule and Slot),
// their check-in answers (QuestionnaireResponse) and their requests
// (Task), and what a clinician writes back after a video visit
// (Encounter, DocumentReference, follow-up Tasks). They stay in
// carefront's own store until writing them back to the EHR is built.
var OwnTypes = []string{"Appointment", "Schedule", "Slot", "QuestionnaireResponse", "Task", "Encounter", "DocumentReference"}

// Overlay puts carefront's own store in front of an upstream EHR for the
// Types carefront writes: a read finds carefront's resource first, else
// the EHR's; a search answers carefront's matches first, then the EHR's,
// paged with one total. Every other type comes from Upstream alone. The
// gateway in front of it decides and audits each access, whichever side
// answers. Matches are not sorted across the two sides: carefront's come
// first whatever _sort says.
type Overlay struct {
	Own      Source
	Upstream Source
	Types    []string
}

func (o *Overlay) overlays(typ string) bool { return slices.Contains(o.Types, typ) }

// Read returns carefront's resource of an overlaid type, or the EHR's.
func (o *Overlay) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if !o.overlays(typ) {
		return o.Upstream.Read(ctx, typ, id)
	}
	r, err := o.Own.Read(ctx, typ, id)
	if c := apperr.CodeOf(err); c == apperr.NotFound || c == apperr.Gone {
		return o.Upstream.Read(ctx, typ, id)
	}
	return r, err
}

// Cursors of an overlaid search: carefront's pages ("o:" and the own
// store's cursor), then the EHR's ("u:" and its cursor).
const (
	cursorOwn      = "o:"
	cursorUpstream = "u:"
)

// Search answers carefront's matches first, then the EHR's.
func (o *Overlay) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	if !o.overlays(q.Type) {
		return o.Upstream.Search(ctx, q)
	}
	if rest, ok := strings.CutPrefix(q.Cursor, cursorUpstream); ok {
		var mine *int
		if q.Total { // carefront's part of the total
			count := *q
			count.Cursor, count.Count = "", 0
			p, err := o.Own.Search(ctx, &count)
			if err != nil {
				return nil, err
			}
			mine = p.Total
		}
		return o.upstreamPage(ctx, q, rest, mine)
	}
	own := *q
	switch rest, ok := strings.CutPrefix(q.Cursor, cursorOwn); {
	case ok:
		own.Cursor = rest
	case q.Cursor != "":
		return nil, apperr.New(apperr.Invalid, "the page cursor is not valid")
	}
	page, err := o.Own.Search(ctx, &own)
	if err != nil {
		return nil, err
	}
	if len(page.Matches) == 0 && q.Cursor == "" {
		return o.upstreamPage(ctx, q, "", page.Total) // nothing of carefront's
	}
	last := page.Next == "" // carefront's last page: the EHR's come next
	if !last {
		page.Next = cursorOwn + page.Next
		if !q.Total {
			return page, nil
		}
	}
	// Whether the EHR has any, and its total when the total is asked: one
	// asked for tells.
	peek := *q
	peek.Cursor, peek.Count = "", 1
	theirs, err := o.Upstream.Search(ctx, &peek)
	if err != nil {
		return nil, err
	}
	if last && len(theirs.Matches) > 0 {
		page.Next = cursorUpstream
	}
	page.Total = sum(page.Total, theirs.Total)
	return page, nil
}

// upstreamPage is a page of the EHR's matches, after carefront's (whose
// total, when known, is added to the EHR's).
func (o *Overlay) upstreamPage(ctx context.Context, q *fhir.Query, cursor string, own *int) (*fhir.Page, error) {
	uq := *q
	uq.Cursor = cursor
	page, err := o.Upstream.Search(ctx, &uq)
	if err != nil {
		return nil, err
	}
	if page.Next != "" {
		page.Next = cursorUpstream + page.Next
	}
	page.Total = sum(own, page.Total)
	return page, nil
}

// sum adds two totals; unknown when either is.
func sum(a, b *int) *int {
	if a == nil || b == nil {
		return nil
	}
	n := *a + *b
	return &n
}
