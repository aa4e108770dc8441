package fhir

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"carefront/internal/apperr"
)

// Query is a parsed FHIR search on one resource type. Clauses are ANDed;
// the values within a clause are ORed, as in FHIR.
type Query struct {
	Type        string
	IDs         []string // _id
	Clauses     []Clause
	LastUpdated []DateCond
	Count       int // page size
	Sort        string
	SortDesc    bool
	Includes    []Include
	Total       bool   // _total=accurate
	Cursor      string // opaque position for the next page

	// Compartment, when set, limits results to one patient's compartment.
	// The access layer sets it; it is never read from a URL.
	Compartment string
	// ExcludeLabels, when set, leaves out resources with any of these
	// security labels ("system|code"): the labels the reader may never
	// see (access.Decision.Hide). The access layer sets it; a source that
	// cannot narrow by them may ignore it, as the gateway decides each
	// returned resource again.
	ExcludeLabels []string
	// raw keeps the URL parameters that shape results, for paging links.
	raw url.Values
}

// Clause is one parameter's condition.
type Clause struct {
	Param  Param
	Tokens []TokenMatch
	Refs   []RefMatch
	Dates  []DateCond
}

// TokenMatch is one token search value: "system|code", "code", "system|"
// or "|code".
type TokenMatch struct {
	System, Code string
	AnySystem    bool // "code": any system
	AnyCode      bool // "system|": any code in the system
}

// RefMatch is one reference search value; an empty Type admits any type.
type RefMatch struct{ Type, ID string }

// DateCond is one date search value with its prefix.
type DateCond struct {
	Prefix string // eq ge gt le lt
	Range
}

// Include is an _include: follow Param of SourceType.
type Include struct {
	SourceType string
	Param      Param
	TargetType string // optional third part
}

// Paging and size limits.
const (
	DefaultCount = 50
	MaxCount     = 1000
)

// UnsupportedParamError names a search parameter carefront does not know
// or does not support in the form given. It is a 400 unless the client
// asked for lenient handling.
type UnsupportedParamError struct {
	Type, Param, Why string
}

func (e *UnsupportedParamError) Error() string { return e.Unwrap().Error() }

// Unwrap gives the user-safe coded error.
func (e *UnsupportedParamError) Unwrap() error {
	return apperr.New(apperr.Invalid, "search parameter %q %s", clip(e.Param), e.Why)
}

// ParseQuery parses a search's URL parameters for resources of typ. With
// lenient, unknown parameters are ignored (Prefer: handling=lenient);
// values that are wrong for a known parameter are always an error.
func ParseQuery(typ string, params url.Values, lenient bool) (*Query, error) {
	if !KnownType(typ) {
		return nil, apperr.New(apperr.Invalid, "%q is not a FHIR R4 resource type", clip(typ))
	}
	q := &Query{Type: typ, Count: DefaultCount, raw: url.Values{}}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	unsupported := func(name, why string) error {
		if lenient {
			return nil
		}
		return &UnsupportedParamError{Type: typ, Param: name, Why: why}
	}
	for _, full := range names {
		vals := params[full]
		for _, v := range vals {
			if !printable(v) {
				return nil, apperr.New(apperr.Invalid, "search parameter %q has a value with control characters or bytes that are not UTF-8", clip(full))
			}
		}
		name, modifier, _ := strings.Cut(full, ":")
		switch name {
		case "_format":
			continue
		case "_count", "_sort", "_total", "_cursor", "_include":
			if modifier != "" && name != "_include" {
				if err := unsupported(full, "takes no modifier"); err != nil {
					return nil, err
				}
				continue
			}
		}
		var err error
		switch name {
		case "_count":
			err = q.parseCount(vals)
		case "_sort":
			err = q.parseSort(vals)
		case "_total":
			for _, v := range vals {
				switch v {
				case "accurate":
					q.Total = true
				case "none", "estimate":
				default:
					return nil, apperr.New(apperr.Invalid, "_total must be none, estimate or accurate")
				}
			}
		case "_cursor":
			q.Cursor = vals[len(vals)-1]
			continue // not kept for links: each link sets its own
		case "_include":
			if modifier != "" && modifier != "iterate" {
				err = unsupported(full, "is not supported with this modifier")
				break
			}
			err = q.parseIncludes(vals)
		case "_id":
			if modifier != "" {
				err = unsupported(full, "takes no modifier")
				break
			}
			for _, v := range vals {
				for _, id := range strings.Split(v, ",") {
					if !ValidID(id) {
						return nil, apperr.New(apperr.Invalid, "_id: %q is not a valid FHIR id", clip(id))
					}
					q.IDs = append(q.IDs, id)
				}
			}
			if len(vals) > 1 {
				return nil, apperr.New(apperr.Invalid, "_id may be given once (list alternatives with commas)")
			}
		case "_lastUpdated":
			if modifier != "" {
				err = unsupported(full, "takes no modifier")
				break
			}
			for _, v := range vals {
				conds, perr := parseDates("_lastUpdated", v)
				if perr != nil {
					return nil, perr
				}
				if len(conds) > 1 {
					return nil, apperr.New(apperr.Invalid, "_lastUpdated takes one value per parameter")
				}
				q.LastUpdated = append(q.LastUpdated, conds...)
			}
		default:
			p, ok := LookupParam(typ, name)
			if !ok {
				err = unsupported(full, fmt.Sprintf("is not supported for %s", typ))
				break
			}
			if modifier != "" {
				err = unsupported(full, "is not supported with this modifier")
				break
			}
			for _, v := range vals {
				c, perr := parseClause(p, v)
				if perr != nil {
					return nil, perr
				}
				q.Clauses = append(q.Clauses, c)
			}
		}
		if err != nil {
			return nil, err
		}
		q.raw[full] = vals
	}
	return q, nil
}

// printable reports whether a search value is UTF-8 text with no control
// characters: a NUL or a newline has no place in a search, and a database
// would refuse some of them with an error of its own.
func printable(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func (q *Query) parseCount(vals []string) error {
	n, err := strconv.Atoi(vals[len(vals)-1])
	if err != nil || n < 0 {
		return apperr.New(apperr.Invalid, "_count must be a whole number from 0 to %d", MaxCount)
	}
	q.Count = min(n, MaxCount)
	return nil
}

func (q *Query) parseSort(vals []string) error {
	if len(vals) > 1 || strings.Contains(vals[0], ",") {
		return apperr.New(apperr.Invalid, "_sort takes one key: date, -date, _lastUpdated or -_lastUpdated")
	}
	key, desc := strings.CutPrefix(vals[0], "-")
	switch key {
	case "_lastUpdated", "_id":
	default:
		p, ok := LookupParam(q.Type, key)
		if !ok || p.Kind != Date {
			return apperr.New(apperr.Invalid, "_sort: %s has no date parameter %q to sort by", q.Type, clip(key))
		}
	}
	q.Sort, q.SortDesc = key, desc
	return nil
}

func (q *Query) parseIncludes(vals []string) error {
	for _, v := range vals {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return apperr.New(apperr.Invalid, "_include must look like Type:parameter, e.g. MedicationRequest:medication")
		}
		if parts[0] != q.Type {
			return apperr.New(apperr.Invalid, "_include %q does not start from %s", clip(v), q.Type)
		}
		p, ok := LookupParam(q.Type, parts[1])
		if !ok || p.Kind != Reference {
			return apperr.New(apperr.Invalid, "_include: %s has no reference parameter %q", q.Type, clip(parts[1]))
		}
		inc := Include{SourceType: q.Type, Param: p}
		if len(parts) == 3 {
			if !KnownType(parts[2]) {
				return apperr.New(apperr.Invalid, "_include: %q is not a resource type", clip(parts[2]))
			}
			inc.TargetType = parts[2]
		}
		q.Includes = append(q.Includes, inc)
	}
	return nil
}

func parseClause(p Param, v string) (Clause, error) {
	c := Clause{Param: p}
	if v == "" {
		return c, apperr.New(apperr.Invalid, "search parameter %s has an empty value", p.Name)
	}
	switch p.Kind {
	case Token:
		for _, part := range splitValues(v) {
			sys, code, hasBar := strings.Cut(part, "|")
			switch {
			case !hasBar:
				c.Tokens = append(c.Tokens, TokenMatch{Code: unescape(sys), AnySystem: true})
			case code == "":
				if sys == "" {
					return c, apperr.New(apperr.Invalid, "%s: %q names neither a system nor a code", p.Name, clip(part))
				}
				c.Tokens = append(c.Tokens, TokenMatch{System: unescape(sys), AnyCode: true})
			default:
				c.Tokens = append(c.Tokens, TokenMatch{System: unescape(sys), Code: unescape(code)})
			}
		}
	case Reference:
		for _, part := range splitValues(v) {
			if ValidID(part) {
				c.Refs = append(c.Refs, RefMatch{Type: p.Target, ID: part})
				continue
			}
			typ, id, ok := ParseRef(part)
			if !ok {
				return c, apperr.New(apperr.Invalid, "%s: %q is not a reference (use Type/id or an id)", p.Name, clip(part))
			}
			if p.Target != "" && typ != p.Target {
				return c, apperr.New(apperr.Invalid, "%s refers to %s only", p.Name, p.Target)
			}
			c.Refs = append(c.Refs, RefMatch{Type: typ, ID: id})
		}
	case Date:
		conds, err := parseDates(p.Name, v)
		if err != nil {
			return c, err
		}
		c.Dates = conds
	}
	return c, nil
}

func parseDates(name, v string) ([]DateCond, error) {
	var out []DateCond
	for _, part := range splitValues(v) {
		prefix := "eq"
		if len(part) >= 2 && part[0] >= 'a' && part[0] <= 'z' {
			prefix, part = part[:2], part[2:]
		}
		switch prefix {
		case "eq", "ge", "gt", "le", "lt":
		case "ne", "sa", "eb", "ap":
			return nil, apperr.New(apperr.Invalid, "%s: the prefix %q is not supported (use eq, ge, gt, le or lt)", name, prefix)
		default:
			return nil, apperr.New(apperr.Invalid, "%s: %q is not a date prefix (use eq, ge, gt, le or lt)", name, clip(prefix))
		}
		r, ok := ParseDate(part)
		if !ok {
			return nil, apperr.New(apperr.Invalid, "%s: %q is not a valid date (use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)", name, clip(part))
		}
		out = append(out, DateCond{prefix, r})
	}
	return out, nil
}

// splitValues splits a search value at commas that are not escaped (\,).
func splitValues(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case ',':
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\,`, `,`, `\|`, `|`, `\$`, `$`, `\\`, `\`)
	return r.Replace(s)
}

// Encode renders the query's own parameters (sorted), with a cursor if
// given: the query string of a paging link.
func (q *Query) Encode(cursor string) string {
	v := url.Values{}
	for k, vals := range q.raw {
		v[k] = vals
	}
	if _, ok := v["_count"]; !ok {
		v.Set("_count", strconv.Itoa(q.Count))
	}
	if cursor != "" {
		v.Set("_cursor", cursor)
	}
	return v.Encode()
}

// Matches reports whether a date range satisfies a condition, with FHIR's
// semantics for ranges: eq means the value lies wholly within the search
// range, gt that it reaches past it, lt that it starts before it, and
// ge/le are gt/lt or eq.
func (c DateCond) Matches(r Range) bool {
	eq := r.Lo >= c.Lo && r.Hi <= c.Hi
	switch c.Prefix {
	case "eq":
		return eq
	case "gt":
		return r.Hi > c.Hi
	case "lt":
		return r.Lo < c.Lo
	case "ge":
		return eq || r.Hi > c.Hi
	case "le":
		return eq || r.Lo < c.Lo
	}
	return false
}
