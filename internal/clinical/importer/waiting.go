package importer

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"carefront/internal/fhir"
)

// Files are imported in rounds. A Bundle or .ndjson chunk that fails while
// one of its conditional references matches nothing yet is deferred to the
// next round, after the rest of the set, and an .ndjson file resumes there
// at the chunk that waited. Rounds go on while each stores something; when
// one stores nothing, nothing that still waits can change, and its errors
// are final. They end: a file stores something only by finishing or by
// moving its next chunk on, and either happens a bounded number of times.
//
// This, rather than a fixed order of types alone, is what makes a set
// import whatever its order: the order (order.go) cannot know every type a
// server refers to conditionally, nor references between files of one
// type (an Organization's partOf), nor .json Bundles that refer to
// another file's Practitioners (Synthea's patient Bundles and its
// practitionerInformation.json). A deferred attempt costs reading the file
// again, which the order makes rare. Each unit still stores whole or not
// at all: deferring is decided after the store rolled the attempt back.

// waiting is the error of a unit deferred to the next round; Err is the
// store's error, which becomes the file's failure if it never resolves.
type waiting struct{ Err error }

func (w *waiting) Error() string { return w.Err.Error() }
func (w *waiting) Unwrap() error { return w.Err }

// errFound stops the walk over a resource's references.
var errFound = errors.New("found")

// waitsForReference reports whether a resource of entries has a
// conditional reference (Type?search) that matches no resource now, so
// the failed attempt to store them may succeed once more of the set is
// stored. A reference whose search is malformed or matches more than one
// resource does not wait: no later file can mend it.
func (im *Importer) waitsForReference(ctx context.Context, entries []*fhir.Entry) bool {
	seen := map[string]bool{}
	for _, e := range entries {
		if e == nil || len(e.Resource) == 0 {
			continue
		}
		_, err := fhir.RewriteReferences(e.Resource, func(ref string) (string, error) {
			typ, query, ok := strings.Cut(ref, "?")
			if !ok || !fhir.KnownType(typ) || seen[ref] {
				return ref, nil
			}
			seen[ref] = true
			vals, err := url.ParseQuery(query)
			if err != nil || len(vals) == 0 {
				return ref, nil
			}
			q, err := fhir.ParseQuery(typ, vals, false)
			if err != nil {
				return ref, nil
			}
			q.Count, q.Includes, q.Total, q.Sort = 1, nil, false, ""
			page, err := im.Store.Search(ctx, q)
			if err == nil && len(page.Matches) == 0 {
				return "", errFound
			}
			return ref, nil
		})
		if errors.Is(err, errFound) {
			return true
		}
	}
	return false
}
