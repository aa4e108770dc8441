package fhir

import (
	"slices"
	"sort"
	"strings"
)

// TokenValue is a coded value: a system and a code (either may be empty).
type TokenValue struct{ System, Code string }

// TokenEntry, RefEntry and DateEntry are search index rows of one resource.
type (
	TokenEntry struct {
		Param string
		TokenValue
	}
	RefEntry struct {
		Param, Type, ID string
	}
	DateEntry struct {
		Param string
		Range
	}
)

// Index is everything searchable about one resource, and the patients
// whose compartment it belongs to.
type Index struct {
	Tokens   []TokenEntry
	Refs     []RefEntry
	Dates    []DateEntry
	Patients []string
}

// Extract computes a resource's index rows from its decoded JSON.
func Extract(typ, id string, v map[string]any) Index {
	var ix Index
	seenTok := map[TokenEntry]bool{}
	seenRef := map[RefEntry]bool{}
	for _, name := range ParamNames(typ) {
		p := Params(typ)[name]
		for _, path := range p.Paths {
			for _, val := range Values(v, path) {
				switch p.Kind {
				case Token:
					for _, t := range tokens(val) {
						e := TokenEntry{p.Name, t}
						if !seenTok[e] {
							seenTok[e] = true
							ix.Tokens = append(ix.Tokens, e)
						}
					}
				case Reference:
					if t, rid, ok := refOf(val); ok && (p.Target == "" || p.Target == t) {
						e := RefEntry{p.Name, t, rid}
						if !seenRef[e] {
							seenRef[e] = true
							ix.Refs = append(ix.Refs, e)
						}
					}
				case Date:
					if r, ok := dateOf(val); ok {
						ix.Dates = append(ix.Dates, DateEntry{p.Name, r})
					}
				}
			}
		}
	}
	pats := map[string]bool{}
	if typ == "Patient" && id != "" {
		pats[id] = true
	}
	for _, name := range compartmentSpecs[typ] {
		for _, r := range ix.Refs {
			if r.Param == name && r.Type == "Patient" {
				pats[r.ID] = true
			}
		}
	}
	for p := range pats {
		ix.Patients = append(ix.Patients, p)
	}
	sort.Strings(ix.Patients)
	return ix
}

// Compartments returns the ids of the patients whose compartment a decoded
// resource belongs to: Extract's Patients, reading only the compartment's
// parameters (every access decision asks, and the full index costs three
// times as much).
func Compartments(typ, id string, v map[string]any) []string {
	var pats []string
	if typ == "Patient" && id != "" {
		pats = append(pats, id)
	}
	params := Params(typ)
	for _, name := range compartmentSpecs[typ] {
		p, ok := params[name]
		if !ok || p.Kind != Reference || (p.Target != "" && p.Target != "Patient") {
			continue
		}
		for _, path := range p.Paths {
			for _, val := range Values(v, path) {
				if t, rid, ok := refOf(val); ok && t == "Patient" && !slices.Contains(pats, rid) {
					pats = append(pats, rid)
				}
			}
		}
	}
	sort.Strings(pats)
	return pats
}

// Values follows a dotted path from a decoded resource, flattening arrays
// on the way; a segment "x[x]" matches every choice element xSomething.
func Values(v any, path string) []any {
	cur := []any{v}
	for _, seg := range strings.Split(path, ".") {
		var next []any
		for _, c := range cur {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			if prefix, choice := strings.CutSuffix(seg, "[x]"); choice {
				for k, val := range m {
					if len(k) > len(prefix) && strings.HasPrefix(k, prefix) && k[len(prefix)] >= 'A' && k[len(prefix)] <= 'Z' {
						next = appendFlat(next, val)
					}
				}
				continue
			}
			if val, ok := m[seg]; ok {
				next = appendFlat(next, val)
			}
		}
		cur = next
	}
	return cur
}

func appendFlat(out []any, v any) []any {
	if arr, ok := v.([]any); ok {
		return append(out, arr...)
	}
	return append(out, v)
}

// tokens reads the codes of a code, boolean, Coding, CodeableConcept or
// Identifier.
func tokens(v any) []TokenValue {
	switch x := v.(type) {
	case string:
		return []TokenValue{{"", x}}
	case bool:
		if x {
			return []TokenValue{{"", "true"}}
		}
		return []TokenValue{{"", "false"}}
	case []any:
		var out []TokenValue
		for _, e := range x {
			out = append(out, tokens(e)...)
		}
		return out
	case map[string]any:
		if codings, ok := x["coding"]; ok {
			return tokens(codings)
		}
		sys, _ := x["system"].(string)
		if code, ok := x["code"].(string); ok {
			return []TokenValue{{sys, code}}
		}
		if val, ok := x["value"].(string); ok { // Identifier, ContactPoint
			return []TokenValue{{sys, val}}
		}
	}
	return nil
}

func refOf(v any) (typ, id string, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap {
		return "", "", false
	}
	s, _ := m["reference"].(string)
	return ParseRef(s)
}

func dateOf(v any) (Range, bool) {
	switch x := v.(type) {
	case string:
		return ParseDate(x)
	case map[string]any: // Period
		r := Range{MinTime, MaxTime}
		s, hasStart := x["start"].(string)
		e, hasEnd := x["end"].(string)
		if !hasStart && !hasEnd {
			return Range{}, false
		}
		if hasStart {
			sr, ok := ParseDate(s)
			if !ok {
				return Range{}, false
			}
			r.Lo = sr.Lo
		}
		if hasEnd {
			er, ok := ParseDate(e)
			if !ok {
				return Range{}, false
			}
			r.Hi = er.Hi
		}
		return r, true
	}
	return Range{}, false
}
