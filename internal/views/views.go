// Package views builds the portal's purpose-built, minimized view models:
// home, results and their trends, medications, the health summary, visits,
// documents, the timeline and the patient's own information. One builder
// per view feeds both the JSON view API and the HTML page, so the two can
// never disagree about what a person sees.
//
// Every read goes through a clinical.View (access.Decide, the release
// rule, one audit record per view). A view carries only the fields its
// page shows: no identifiers, addresses or telecom except on the profile,
// and no internal ids beyond what links need. It never reads a
// clinical.Source directly and never logs what it builds.
package views

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"carefront/internal/access"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// Builder builds views for a request through the clinical gateway.
type Builder struct {
	Gateway *clinical.Gateway
	Dict    *Dictionary
	// Now is the clock (upcoming visits, held results); nil is time.Now.
	Now func() time.Time
	// Sequential runs a view's independent queries one after another
	// instead of in parallel: on the embedded store they compete for the
	// same cores, so fanning out gains nothing (bench/README.md); against
	// an EHR each is a round trip, and they run at once.
	Sequential bool
	// Cache, when set, keeps the home view for a short time.
	Cache *Cache
}

func (b *Builder) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Block names a part of a view that could not be filled because a source
// could not answer; the page says so in plain language.
type Block string

// The blocks of views that fan out.
const (
	BlockAppointments Block = "appointments"
	BlockResults      Block = "results"
	BlockMedications  Block = "medications"
	BlockGoals        Block = "goals"
	BlockConditions   Block = "conditions"
	BlockAllergies    Block = "allergies"
	BlockImmunization Block = "immunizations"
	BlockCareTeam     Block = "careTeam"
	BlockCarePlans    Block = "carePlans"
	BlockEncounters   Block = "encounters"
	BlockProcedures   Block = "procedures"
)

// session is one view being built: the clinical.View it reads through and
// a cache of the directory resources (clinicians, places) it names.
type session struct {
	b *Builder
	v *clinical.View
	// found counts the resources of the record read for the view.
	found atomic.Int64
	mu    sync.Mutex
	dir   map[string]map[string]any
	lang  string
}

// open begins view name for req. The caller must call finish.
func (b *Builder) open(ctx context.Context, req clinical.Request, name, lang string) (*session, error) {
	v, err := b.Gateway.Open(ctx, req, name)
	if err != nil {
		return nil, err
	}
	return &session{b: b, v: v, dir: map[string]map[string]any{}, lang: lang}, nil
}

// finish closes the view (its audit record) and returns err, or the audit
// failure, which withholds the view.
func (s *session) finish(ctx context.Context, err error) error {
	if cerr := s.v.Close(ctx, err); cerr != nil {
		return cerr
	}
	return err
}

// build opens view name for req, builds it with fn and finishes it: the
// frame every view's builder shares.
func build[T any](ctx context.Context, b *Builder, req clinical.Request, name, lang string, fn func(*session) (*T, error)) (*T, error) {
	s, err := b.open(ctx, req, name, lang)
	if err != nil {
		return nil, err
	}
	out, err := fn(s)
	return done(ctx, s, out, err)
}

// done finishes the view and returns what it built, or nothing when the
// view failed or its audit record could not be written: a view whose
// access is not on record is never shown.
func done[T any](ctx context.Context, s *session, out *T, err error) (*T, error) {
	if err := s.finish(ctx, err); err != nil {
		return nil, err
	}
	return out, nil
}

// search runs one search of typ with params and follows its pages up to
// limit resources. It returns the shown and the held resources.
func (s *session) search(ctx context.Context, typ string, params url.Values, limit int) (shown, held []map[string]any, err error) {
	q, err := fhir.ParseQuery(typ, params, false)
	if err != nil {
		return nil, nil, err
	}
	if s.withheld(ctx, typ) {
		return nil, nil, nil
	}
	q.Count = min(limit, fhir.MaxCount)
	for {
		page, err := s.v.Search(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		s.found.Add(int64(len(page.Matches)))
		for _, r := range page.Matches {
			if t, err := r.Tree(); err == nil {
				shown = append(shown, t)
			}
		}
		for _, r := range page.Held {
			if t, err := r.Tree(); err == nil {
				held = append(held, t)
			}
		}
		for _, r := range page.Included {
			if t, err := r.Tree(); err == nil {
				s.mu.Lock()
				s.dir[r.Ref()] = t
				s.mu.Unlock()
			}
		}
		if page.Next == "" || len(shown)+len(held) >= limit {
			return shown, held, nil
		}
		q.Cursor = page.Next
	}
}

// withheld reports whether data of typ is kept from the person as a
// whole (a kind their caregiver grant does not cover, or one the
// patient's consent keeps from them): a view shows none of it and reads
// none of it, rather than failing.
func (s *session) withheld(ctx context.Context, typ string) bool {
	d := access.Decide(ctx, s.v.Request().Principal, access.Search, access.Target{Type: typ})
	return !d.Permit && (d.Reason == access.ReasonProxyKind || d.Reason == access.ReasonConsentDenied || d.Reason == access.ReasonLinkKind)
}

// read reads one resource of the patient's by type and id.
func (s *session) read(ctx context.Context, typ, id string) (map[string]any, error) {
	r, err := s.v.Read(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	return r.Tree()
}

// name returns the display name of a referenced directory resource (a
// clinician, a place, an organization), read once per view; "" when the
// reference cannot be read. A reference's display is used when the
// resource is not at hand (upstream records often carry one).
func (s *session) name(ctx context.Context, ref any) string {
	m, _ := ref.(map[string]any)
	if m == nil {
		return ""
	}
	display, _ := m["display"].(string)
	r, _ := m["reference"].(string)
	typ, id, ok := fhir.ParseRef(r)
	if !ok || !slices.Contains([]string{"Practitioner", "Location", "Organization", "PractitionerRole", "Medication"}, typ) {
		return display
	}
	key := typ + "/" + id
	s.mu.Lock()
	t, cached := s.dir[key]
	s.mu.Unlock()
	if !cached {
		var err error
		t, err = s.read(ctx, typ, id)
		if err != nil {
			t = nil
		}
		s.mu.Lock()
		s.dir[key] = t
		s.mu.Unlock()
	}
	if t == nil {
		return display
	}
	switch typ {
	case "Practitioner":
		if n := humanName(t["name"]); n != "" {
			return n
		}
	case "Medication":
		if n := conceptText(t["code"]); n != "" {
			return n
		}
	default:
		if n, _ := t["name"].(string); n != "" {
			return n
		}
	}
	return display
}

// prefetch reads the named directory resources not yet read, at once (or
// one after another when the builder is Sequential), so that name finds
// them: against an EHR each read is a round trip.
func (s *session) prefetch(ctx context.Context, refs ...any) {
	var fns []func()
	seen := map[string]bool{}
	for _, ref := range refs {
		r, _ := obj(ref)["reference"].(string)
		typ, id, ok := fhir.ParseRef(r)
		if !ok || seen[typ+"/"+id] {
			continue
		}
		seen[typ+"/"+id] = true
		s.mu.Lock()
		_, cached := s.dir[typ+"/"+id]
		s.mu.Unlock()
		if !cached {
			fns = append(fns, func() { s.name(ctx, ref) })
		}
	}
	s.b.parallel(fns...)
}

// parallel runs fns at once (or one after another when the builder is
// Sequential) and waits for all.
func (b *Builder) parallel(fns ...func()) {
	if b.Sequential {
		for _, f := range fns {
			f()
		}
		return
	}
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Go(f)
	}
	wg.Wait()
}

// blockErr sorts a block's error: a source that could not answer is shown
// as a notice on that block (unavailable reports true); any other error
// fails the view.
func blockErr(err error) (unavailable bool, fatal error) {
	if err == nil {
		return false, nil
	}
	if clinical.IsUnavailable(err) {
		return true, nil
	}
	return false, err
}

// --- reading FHIR JSON ---

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// conceptText is what a person reads for a CodeableConcept: its text, else
// its first coding's display, else its first code.
func conceptText(v any) string {
	c := obj(v)
	if c == nil {
		return ""
	}
	if t := str(c, "text"); t != "" {
		return t
	}
	for _, cd := range list(c["coding"]) {
		if d := str(obj(cd), "display"); d != "" {
			return d
		}
	}
	for _, cd := range list(c["coding"]) {
		if d := str(obj(cd), "code"); d != "" {
			return d
		}
	}
	return ""
}

// firstConcept is conceptText of the first of a list of concepts.
func firstConcept(v any) string {
	for _, c := range list(v) {
		if t := conceptText(c); t != "" {
			return t
		}
	}
	return ""
}

// codeIn returns the concept's code in system, or "".
func codeIn(v any, system string) string {
	for _, cd := range list(obj(v)["coding"]) {
		if str(obj(cd), "system") == system {
			return str(obj(cd), "code")
		}
	}
	return ""
}

// humanName renders the first (official first) HumanName as people write
// it: given names, family name.
func humanName(v any) string {
	names := slices.Clone(list(v)) // the tree is shared: sort a copy
	slices.SortStableFunc(names, func(a, b any) int {
		ua, ub := str(obj(a), "use") == "official", str(obj(b), "use") == "official"
		switch {
		case ua && !ub:
			return -1
		case ub && !ua:
			return 1
		}
		return 0
	})
	for _, n := range names {
		m := obj(n)
		if t := str(m, "text"); t != "" {
			return t
		}
		var parts []string
		for _, g := range list(m["given"]) {
			if s, ok := g.(string); ok {
				parts = append(parts, s)
			}
		}
		if f := str(m, "family"); f != "" {
			parts = append(parts, f)
		}
		if len(parts) > 0 {
			return strings.Join(parts, " ")
		}
	}
	return ""
}

// when reads a FHIR date or dateTime; the zero time when absent or bad.
func when(s string) time.Time {
	r, ok := fhir.ParseDate(s)
	if !ok {
		return time.Time{}
	}
	return time.UnixMicro(r.Lo).UTC()
}

// firstDate is the first of keys that holds a date or dateTime, reading
// Periods by their start.
func firstDate(m map[string]any, keys ...string) time.Time {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if t := when(v); !t.IsZero() {
				return t
			}
		case map[string]any:
			if t := when(str(v, "start")); !t.IsZero() {
				return t
			}
		}
	}
	return time.Time{}
}

// idOf returns the id of a decoded resource.
func idOf(m map[string]any) string { return str(m, "id") }

// number formats a decimal as the record gives it, without trailing noise.
func number(v any) string {
	switch n := v.(type) {
	case json.Number:
		return n.String()
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return ""
}

// float reads a JSON number of a decoded resource.
func float(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}
