package views

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

const (
	loinc          = "http://loinc.org"
	interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
)

// Results is the results page: results grouped by report and date, newest
// first, with the results the patient chose to see after review listed
// apart.
type Results struct {
	Groups []ResultGroup `json:"groups"`
	Held   []HeldResult  `json:"held,omitempty"`
	// Before is the paging cursor of the next, older page; empty on the
	// last.
	Before string `json:"before,omitempty"`
}

// ResultGroup is one report (a panel) or the standalone results of one
// time.
type ResultGroup struct {
	Title      string    `json:"title,omitempty"`
	Date       time.Time `json:"date"`
	Conclusion string    `json:"conclusion,omitempty"`
	Results    []Result  `json:"results"`
}

// Result is one result as a person reads it.
type Result struct {
	// Ref is the result's reference (Observation/ID), for asking to
	// correct it.
	Ref  string `json:"ref,omitempty"`
	Name string `json:"name"`
	// Key is the test's key in /results/{key} links: its LOINC code, or
	// system|code for results coded otherwise.
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
	Unit  string `json:"unit,omitempty"`
	Range string `json:"range,omitempty"`
	// Interpretation is high, low, normal, critical or abnormal; empty
	// when the record gives none and there is no range to read it by.
	Interpretation string      `json:"interpretation,omitempty"`
	Note           string      `json:"note,omitempty"`
	Components     []Component `json:"components,omitempty"`
	About          string      `json:"about,omitempty"`
	LearnMore      string      `json:"learnMore,omitempty"`
	// Trend reports whether the test has two or more results to chart.
	Trend bool      `json:"trend"`
	Date  time.Time `json:"date"`
}

// Component is one part of a result read as one (a blood pressure's
// systolic and diastolic values).
type Component struct {
	Name           string `json:"name"`
	Value          string `json:"value"`
	Unit           string `json:"unit,omitempty"`
	Range          string `json:"range,omitempty"`
	Interpretation string `json:"interpretation,omitempty"`
}

// HeldResult is a result that is ready but waits, as the patient chose,
// for their care team's review. Refs are what "Show it now" releases.
type HeldResult struct {
	Title string    `json:"title"`
	Date  time.Time `json:"date"`
	Refs  []string  `json:"refs"`
}

// resultsPerPage bounds the results one page of the list reads.
const resultsPerPage = 60

// ResultsOptions are the list's paging.
type ResultsOptions struct {
	Before time.Time // only results before this time; zero for the newest
	Lang   string
}

// ParseBefore reads a ?before= cursor; a bad one is Invalid, naming it.
func ParseBefore(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, apperr.New(apperr.Invalid, "before must be a date and time like 2024-05-01T10:00:00Z")
	}
	return t, nil
}

// Results builds the results page.
func (b *Builder) Results(ctx context.Context, req clinical.Request, o ResultsOptions) (*Results, error) {
	return build(ctx, b, req, "results", o.Lang, func(s *session) (*Results, error) { return s.results(ctx, o) })
}

func (s *session) results(ctx context.Context, o ResultsOptions) (*Results, error) {
	p := url.Values{"_sort": {"-date"}}
	if !o.Before.IsZero() {
		p.Set("date", "lt"+o.Before.UTC().Format(time.RFC3339Nano))
	}
	obs, heldObs, err := s.search(ctx, "Observation", p, resultsPerPage)
	if err != nil {
		return nil, err
	}
	out := &Results{Groups: []ResultGroup{}}
	// A full page (shown and held together) may end inside one time's
	// results: keep only what is newer than the oldest time fetched, and
	// the next page starts before the oldest kept, so nothing is skipped
	// or shown twice.
	if len(obs)+len(heldObs) >= resultsPerPage {
		horizon := oldestOf(obs, heldObs)
		newer := func(m map[string]any) bool { return !obsDate(m).After(horizon) }
		keptObs := slices.DeleteFunc(slices.Clone(obs), newer)
		keptHeld := slices.DeleteFunc(slices.Clone(heldObs), newer)
		if len(keptObs)+len(keptHeld) > 0 {
			obs, heldObs = keptObs, keptHeld
			out.Before = oldestOf(obs, heldObs).UTC().Format(time.RFC3339Nano)
		} else {
			// A whole page at one time: show it, and go on before it (more
			// results at exactly that time than a page holds are not
			// reached).
			out.Before = horizon.UTC().Format(time.RFC3339Nano)
		}
	}
	if len(obs) == 0 && len(heldObs) == 0 {
		return out, nil
	}
	// The reports of the same span.
	oldest := oldestOf(obs, heldObs)
	rp := url.Values{"_sort": {"-date"}}
	if !oldest.IsZero() {
		rp.Add("date", "ge"+oldest.UTC().Format(time.RFC3339Nano))
	}
	if !o.Before.IsZero() {
		rp.Add("date", "lt"+o.Before.UTC().Format(time.RFC3339Nano))
	}
	reports, heldReports, err := s.search(ctx, "DiagnosticReport", rp, 200)
	if err != nil {
		return nil, err
	}
	byRef := map[string]map[string]any{}
	for _, m := range obs {
		byRef["Observation/"+idOf(m)] = m
	}
	used := map[string]bool{}
	for _, r := range reports {
		g := ResultGroup{Title: conceptText(r["code"]), Date: firstDate(r, "effectiveDateTime", "effectivePeriod", "issued"),
			Conclusion: str(r, "conclusion")}
		for _, ref := range list(r["result"]) {
			ref := str(obj(ref), "reference")
			if m, ok := byRef[ref]; ok && !used[ref] {
				used[ref] = true
				g.Results = append(g.Results, s.result(m, o.Lang))
			}
		}
		if len(g.Results) > 0 || g.Conclusion != "" {
			if g.Results == nil {
				g.Results = []Result{}
			}
			out.Groups = append(out.Groups, g)
		}
	}
	// Standalone results, grouped by their time.
	for _, m := range obs {
		if used["Observation/"+idOf(m)] {
			continue
		}
		r := s.result(m, o.Lang)
		if n := len(out.Groups); n > 0 && out.Groups[n-1].Title == "" && out.Groups[n-1].Date.Equal(r.Date) {
			out.Groups[n-1].Results = append(out.Groups[n-1].Results, r)
			continue
		}
		out.Groups = append(out.Groups, ResultGroup{Date: r.Date, Results: []Result{r}})
	}
	slices.SortStableFunc(out.Groups, func(a, b ResultGroup) int { return b.Date.Compare(a.Date) })
	out.Held = heldResults(heldReports, heldObs)
	return out, nil
}

// heldResults lists held reports with their held results, then held
// results of no held report.
func heldResults(reports, obs []map[string]any) []HeldResult {
	var out []HeldResult
	inReport := map[string]bool{}
	for _, r := range reports {
		h := HeldResult{Title: conceptText(r["code"]), Date: firstDate(r, "issued", "effectiveDateTime", "effectivePeriod"),
			Refs: []string{"DiagnosticReport/" + idOf(r)}}
		for _, ref := range list(r["result"]) {
			ref := str(obj(ref), "reference")
			if typ, id, ok := fhir.ParseRef(ref); ok && typ == "Observation" {
				h.Refs = append(h.Refs, "Observation/"+id)
				inReport["Observation/"+id] = true
			}
		}
		out = append(out, h)
	}
	for _, m := range obs {
		ref := "Observation/" + idOf(m)
		if inReport[ref] {
			continue
		}
		out = append(out, HeldResult{Title: conceptText(m["code"]), Date: obsDate(m), Refs: []string{ref}})
	}
	slices.SortStableFunc(out, func(a, b HeldResult) int { return b.Date.Compare(a.Date) })
	return out
}

// oldestOf is the oldest result time of lists sorted newest first; zero
// when both are empty.
func oldestOf(lists ...[]map[string]any) time.Time {
	var oldest time.Time
	for _, l := range lists {
		if len(l) == 0 {
			continue
		}
		if d := obsDate(l[len(l)-1]); oldest.IsZero() || d.Before(oldest) {
			oldest = d
		}
	}
	return oldest
}

// obsDate is when a result was taken (else issued).
func obsDate(m map[string]any) time.Time {
	return firstDate(m, "effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued")
}

// resultKey is a test's key in links: its LOINC code, else system|code of
// its first coding; "" when it has no code.
func resultKey(code any) string {
	if c := codeIn(code, loinc); c != "" {
		return c
	}
	for _, cd := range list(obj(code)["coding"]) {
		m := obj(cd)
		if str(m, "code") != "" {
			return str(m, "system") + "|" + str(m, "code")
		}
	}
	return ""
}

// KeyPath is a result key as it goes in a URL path segment.
func KeyPath(key string) string { return url.PathEscape(key) }

// result reads one Observation.
func (s *session) result(m map[string]any, lang string) Result {
	key := resultKey(m["code"])
	r := Result{Ref: "Observation/" + idOf(m), Name: conceptText(m["code"]), Date: obsDate(m)}
	if key != "" {
		r.Key = key
	}
	if code := codeIn(m["code"], loinc); code != "" {
		r.About = s.b.Dict.About(code, lang)
		r.LearnMore = LearnMore(code, lang)
		if n := s.b.Dict.Name(code, lang); n != "" {
			r.Name = n
		}
	}
	r.Value, r.Unit = value(m)
	r.Range = rangeText(m["referenceRange"])
	r.Interpretation = interpret(m)
	var notes []string
	for _, n := range list(m["note"]) {
		if t := str(obj(n), "text"); t != "" {
			notes = append(notes, t)
		}
	}
	r.Note = strings.Join(notes, "\n")
	for _, c := range list(m["component"]) {
		cm := obj(c)
		v, u := value(cm)
		r.Components = append(r.Components, Component{Name: conceptText(cm["code"]), Value: v, Unit: u,
			Range: rangeText(cm["referenceRange"]), Interpretation: interpret(cm)})
	}
	// A numeric result links to its test's page: its results over time
	// (a chart from two on).
	r.Trend = key != "" && hasNumber(m)
	// A blood pressure reads as one: systolic/diastolic.
	if len(r.Components) == 2 && r.Value == "" && codeIn(obj(list(m["component"])[0])["code"], loinc) == "8480-6" {
		sys, dia := r.Components[0], r.Components[1]
		r.Value, r.Unit = sys.Value+"/"+dia.Value, sys.Unit
		r.Interpretation = worse(sys.Interpretation, dia.Interpretation)
	}
	return r
}

// hasNumber reports whether a result has a number to chart, in itself or
// in its parts.
func hasNumber(m map[string]any) bool {
	if _, ok := numericValue(m); ok {
		return true
	}
	for _, c := range list(m["component"]) {
		if _, ok := numericValue(obj(c)); ok {
			return true
		}
	}
	return false
}

// value renders an observation's (or component's) value and unit.
func value(m map[string]any) (string, string) {
	if q := obj(m["valueQuantity"]); q != nil {
		return str(q, "comparator") + number(q["value"]), unit(q)
	}
	switch {
	case m["valueString"] != nil:
		return str(m, "valueString"), ""
	case m["valueCodeableConcept"] != nil:
		return conceptText(m["valueCodeableConcept"]), ""
	case m["valueInteger"] != nil:
		return number(m["valueInteger"]), ""
	case m["valueBoolean"] != nil:
		if b, _ := m["valueBoolean"].(bool); b {
			return "yes", ""
		}
		return "no", ""
	case m["valueDateTime"] != nil:
		return str(m, "valueDateTime"), ""
	}
	return "", ""
}

// numericValue is a quantity value as a number.
func numericValue(m map[string]any) (float64, bool) {
	return float(obj(m["valueQuantity"])["value"])
}

// rangeText renders the first reference range: "70–99", "< 5.6", "> 60",
// or its text.
func rangeText(v any) string {
	rr := obj(firstOf(v))
	if rr == nil {
		return ""
	}
	lo, hi := obj(rr["low"]), obj(rr["high"])
	switch {
	case lo != nil && hi != nil:
		return number(lo["value"]) + "–" + number(hi["value"])
	case hi != nil:
		return "< " + number(hi["value"])
	case lo != nil:
		return "> " + number(lo["value"])
	}
	return str(rr, "text")
}

func firstOf(v any) any {
	if l := list(v); len(l) > 0 {
		return l[0]
	}
	return nil
}

// rangeBounds returns the first reference range's numeric bounds.
func rangeBounds(v any) (lo, hi *float64) {
	rr := obj(firstOf(v))
	if l, ok := float(obj(rr["low"])["value"]); ok {
		lo = &l
	}
	if h, ok := float(obj(rr["high"])["value"]); ok {
		hi = &h
	}
	return lo, hi
}

// interpret reads the interpretation the record gives (v3
// ObservationInterpretation), else compares the value with the range.
func interpret(m map[string]any) string {
	for _, c := range list(m["interpretation"]) {
		switch codeIn(c, interpretation) {
		case "HH", "LL", "AA", "HU", "LU":
			return "critical"
		case "H", "HX":
			return "high"
		case "L", "LX":
			return "low"
		case "N":
			return "normal"
		case "A", "ABN":
			return "abnormal"
		}
	}
	v, ok := numericValue(m)
	if !ok {
		return ""
	}
	lo, hi := rangeBounds(m["referenceRange"])
	switch {
	case hi != nil && v > *hi:
		return "high"
	case lo != nil && v < *lo:
		return "low"
	case lo != nil || hi != nil:
		return "normal"
	}
	return ""
}

// worse is the more urgent of two interpretations.
func worse(a, b string) string {
	rank := map[string]int{"": 0, "normal": 1, "abnormal": 2, "low": 3, "high": 3, "critical": 4}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
