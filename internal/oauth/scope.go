// Package oauth is carefront's OpenID Connect provider and SMART App
// Launch 2.x authorization server: the scope grammar, the client
// registry, authorizations (an app's grant, kept as a Consent) and the
// tokens issued under them. The protocol endpoints are built on
// github.com/zitadel/oidc/v3; what SMART adds (scopes, launch context,
// token response fields) is here.
package oauth

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"carefront/internal/fhir"
)

// Scopes that are not about resources.
const (
	ScopeOpenID        = "openid"
	ScopeFHIRUser      = "fhirUser"
	ScopeProfile       = "profile"
	ScopeLaunch        = "launch"
	ScopeLaunchPatient = "launch/patient"
	ScopeOffline       = "offline_access"
	ScopeOnline        = "online_access"
)

// plainScopes are the scopes carefront knows that name no resource.
var plainScopes = []string{ScopeOpenID, ScopeFHIRUser, ScopeProfile, ScopeLaunch, ScopeLaunchPatient, ScopeOffline, ScopeOnline}

// Perm is a SMART v2 permission; a scope holds a set of them.
type Perm uint8

// The permissions, in the order SMART v2 writes them (c r u d s).
const (
	Create Perm = 1 << iota
	Read
	Update
	Delete
	Search
)

var permLetters = []struct {
	p Perm
	c byte
}{{Create, 'c'}, {Read, 'r'}, {Update, 'u'}, {Delete, 'd'}, {Search, 's'}}

// Scope is one parsed scope: a plain one (openid, launch/patient, ...),
// or a resource scope "patient/Observation.rs?category=...", in SMART
// v1 ("patient/Observation.read") or v2 form.
type Scope struct {
	// Plain is the scope when it names no resource.
	Plain string
	// Context is patient, user or system for a resource scope.
	Context string
	// Type is the FHIR resource type, or "*" for all.
	Type  string
	Perms Perm
	// V1 says it was written in SMART v1 form (.read, .write, .*).
	V1 bool
	// Query is a granular scope's restriction (v2 only): a resource must
	// match every parameter, as a search would.
	Query url.Values
}

// granularParams are the search parameters a granular scope may name:
// the categories SMART App Launch 2 asks servers to support (and US Core
// defines for Observation, Condition, DocumentReference and others).
var granularParams = []string{"category"}

// ParseScope parses one scope. It accepts the plain scopes carefront
// knows and resource scopes in SMART v1 and v2 grammar; anything else
// is an error naming the scope (the token endpoint's invalid_scope).
func ParseScope(s string) (Scope, error) {
	if s == "" || len(s) > 512 || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return Scope{}, fmt.Errorf("scope %q is malformed", clip(s))
	}
	if slices.Contains(plainScopes, s) {
		return Scope{Plain: s}, nil
	}
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
		return Scope{}, fmt.Errorf("scope %q is not one carefront knows", clip(s))
	}
	rest, query, granular := strings.Cut(rest, "?")
	typ, perms, ok := strings.Cut(rest, ".")
	if !ok || typ == "" || perms == "" {
		return Scope{}, fmt.Errorf("scope %q must be %s/Type.permissions", clip(s), ctx)
	}
	if typ != "*" && !fhir.KnownType(typ) {
		return Scope{}, fmt.Errorf("scope %q names %q, which is not a FHIR resource type", clip(s), clip(typ))
	}
	sc := Scope{Context: ctx, Type: typ}
	switch perms {
	case "read":
		sc.Perms, sc.V1 = Read|Search, true
	case "write":
		sc.Perms, sc.V1 = Create|Update|Delete, true
	case "*":
		sc.Perms, sc.V1 = Create|Read|Update|Delete|Search, true
	default:
		i := 0
		for _, l := range permLetters {
			if i < len(perms) && perms[i] == l.c {
				sc.Perms |= l.p
				i++
			}
		}
		if i != len(perms) {
			return Scope{}, fmt.Errorf("scope %q: permissions must be some of c, r, u, d, s in that order, or read, write or *", clip(s))
		}
	}
	if granular {
		if sc.V1 {
			return Scope{}, fmt.Errorf("scope %q: a SMART v1 scope cannot carry a query", clip(s))
		}
		if typ == "*" {
			return Scope{}, fmt.Errorf("scope %q: a query needs a resource type", clip(s))
		}
		vals, err := url.ParseQuery(query)
		if err != nil || len(vals) == 0 {
			return Scope{}, fmt.Errorf("scope %q has a malformed query", clip(s))
		}
		for name, vs := range vals {
			if !slices.Contains(granularParams, name) {
				return Scope{}, fmt.Errorf("scope %q: carefront narrows scopes by %s only, not %q", clip(s), strings.Join(granularParams, ", "), clip(name))
			}
			if _, ok := fhir.LookupParam(typ, name); !ok {
				return Scope{}, fmt.Errorf("scope %q: %s has no %s", clip(s), typ, name)
			}
			for _, v := range vs {
				if v == "" {
					return Scope{}, fmt.Errorf("scope %q: %s is empty", clip(s), name)
				}
			}
		}
		sc.Query = vals
	}
	return sc, nil
}

// ParseScopes parses a space-separated scope list (as the authorize and
// token requests carry it), dropping repeats. The first scope in error
// is the error.
func ParseScopes(list string) ([]Scope, error) {
	var out []Scope
	seen := map[string]bool{}
	for _, s := range strings.Fields(list) {
		if seen[s] {
			continue
		}
		seen[s] = true
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// storedScopes parses a scope list carefront stored (a grant's or a
// token's): the same few lists come back on every API request, so their
// parses are kept, up to maxStoredScopes lists. Each caller gets its own
// slice (the Query maps are shared and must not be changed).
func storedScopes(list string) ([]Scope, error) {
	if v, ok := scopeMemo.Load(list); ok {
		return slices.Clone(v.([]Scope)), nil
	}
	ss, err := ParseScopes(list)
	if err != nil {
		return nil, err
	}
	if scopeMemoN.Load() < maxStoredScopes {
		if _, loaded := scopeMemo.LoadOrStore(list, slices.Clip(ss)); !loaded {
			scopeMemoN.Add(1)
		}
	}
	return slices.Clone(ss), nil
}

const maxStoredScopes = 4096

var (
	scopeMemo  sync.Map // scope list -> []Scope
	scopeMemoN atomic.Int64
)

// String writes the scope in canonical form: v1 scopes as they came,
// v2 permissions in c r u d s order, query parameters sorted.
func (s Scope) String() string {
	if s.Plain != "" {
		return s.Plain
	}
	var b strings.Builder
	b.WriteString(s.Context + "/" + s.Type + ".")
	switch {
	case s.V1 && s.Perms == Read|Search:
		b.WriteString("read")
	case s.V1 && s.Perms == Create|Update|Delete:
		b.WriteString("write")
	case s.V1:
		b.WriteString("*")
	default:
		for _, l := range permLetters {
			if s.Perms&l.p != 0 {
				b.WriteByte(l.c)
			}
		}
	}
	if len(s.Query) > 0 {
		b.WriteString("?" + encodeQuery(s.Query))
	}
	return b.String()
}

// readable undoes the escaping of characters a token's system|code
// needs and a query does not: scopes come back as apps write them.
var readable = strings.NewReplacer("%3A", ":", "%2F", "/", "%7C", "|")

// encodeQuery is url.Values.Encode (keys sorted) with ':', '/' and '|'
// left as they are.
func encodeQuery(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		for _, val := range v[k] {
			parts = append(parts, url.QueryEscape(k)+"="+readable.Replace(url.QueryEscape(val)))
		}
	}
	return strings.Join(parts, "&")
}

// Resource reports whether the scope is about resources.
func (s Scope) Resource() bool { return s.Plain == "" }

// Covers reports whether the scope lets a request with permission p
// reach resources of type typ at all (a granular scope only those that
// match its query).
func (s Scope) Covers(typ string, p Perm) bool {
	return s.Resource() && (s.Type == "*" || s.Type == typ) && s.Perms&p == p
}

// Within reports whether s asks for no more than asked does: the same
// plain scope, or a resource scope of the same context whose type is
// asked's (or asked is a wildcard), whose permissions are among asked's,
// and whose query is asked's, or narrower when asked has none. (A person
// approving "patient/*.rs" for some kinds of data only grants
// "patient/Observation.rs" and the like.)
func (s Scope) Within(asked Scope) bool {
	if s.Plain != "" || asked.Plain != "" {
		return s.Plain == asked.Plain
	}
	if s.Context != asked.Context || (asked.Type != "*" && asked.Type != s.Type) || s.Perms&^asked.Perms != 0 {
		return false
	}
	return len(asked.Query) == 0 || encodeQuery(asked.Query) == encodeQuery(s.Query)
}

// Format is the canonical space-separated list of scopes.
func Format(scopes []Scope) string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = s.String()
	}
	return strings.Join(out, " ")
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
