// Package fhirapi is the FHIR R4 API that SMART apps call (/fhir/R4):
// a bearer token (oauth.Flow) becomes a principal acting for the person
// who connected the app, and every read and search goes through
// clinical.Gateway (access.Decide and the audit trail), intersected with
// the token's scopes: a type the token does not grant is 403, anything
// the person may not see answers as missing, and a granular category
// grant narrows searches before they run.
package fhirapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
	"carefront/internal/oauth"
	"carefront/internal/telemetry"
)

// Types are the resource types apps may read and search: the patient-
// facing subset of US Core 6.1.0, as the authorization screen groups
// them (oauth.Kinds).
var Types = oauth.APITypes()

// Handler serves the FHIR API under Base's path.
type Handler struct {
	Flow    *oauth.Flow
	Gateway *clinical.Gateway
	// Clients answers which browser origins apps registered (CORS); nil
	// allows none.
	Clients *oauth.Clients
	// Base is the API's absolute URL, e.g. https://portal.example/fhir/R4;
	// the authorization server's endpoints are at its origin.
	Base string
	// Registration says apps may register themselves (RFC 7591): the
	// SMART configuration names the endpoint.
	Registration bool
	// Limiter bounds each app's requests for each record connection
	// (keyed by client and grant); nil bounds none.
	Limiter interface {
		Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
	}
}

// ServeHTTP answers GET TYPE/ID and GET TYPE?params, with CORS for the
// origins apps registered.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.Clients.CORS("GET", http.HandlerFunc(h.serve)).ServeHTTP(w, r)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		body, _ := fhir.OutcomeJSON(apperr.New(apperr.Forbidden, "apps may read and search only"))
		w.Header().Set("Allow", "GET")
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		w.Write(body)
		return
	}
	base, _ := url.Parse(h.Base)
	rest, ok := strings.CutPrefix(r.URL.Path, strings.TrimSuffix(base.Path, "/")+"/")
	if !ok || rest == "" {
		writeOutcome(w, apperr.New(apperr.NotFound, "no such FHIR endpoint"))
		return
	}
	switch rest {
	case "metadata":
		h.metadata(w)
		return
	case ".well-known/smart-configuration":
		h.smartConfiguration(w)
		return
	}
	info, err := h.token(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="carefront", error="invalid_token"`)
		writeOutcome(w, apperr.New(apperr.Unauthorized, "a valid access token is required"))
		return
	}
	if h.Limiter != nil {
		if ok, wait := h.Limiter.Allow(r.Context(), info.Grant.ClientID+"|"+info.Grant.ID); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.999))))
			writeOutcome(w, apperr.New(apperr.RateLimited, "too many requests from this app; try again shortly"))
			return
		}
	}
	req := clinical.Request{Principal: access.Principal{User: "Person/" + info.Grant.Account, Patient: info.Grant.Patient,
		Client: info.Grant.ClientID, Caregiver: info.Grant.Caregiver, Address: telemetry.ClientAddr(r.Context())}, RequestID: telemetry.RequestID(r.Context()), Token: info.ID}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && slices.Contains(Types, parts[0]):
		h.search(w, r, req, info, parts[0])
	case len(parts) == 2 && slices.Contains(Types, parts[0]) && fhir.ValidID(parts[1]):
		h.read(w, r, req, info, parts[0], parts[1], "")
	case len(parts) == 4 && slices.Contains(Types, parts[0]) && fhir.ValidID(parts[1]) && parts[2] == "_history" && fhir.ValidID(parts[3]):
		h.read(w, r, req, info, parts[0], parts[1], parts[3])
	case len(parts) == 3 && parts[0] == "Patient" && fhir.ValidID(parts[1]) && parts[2] == "$everything":
		h.everything(w, r, req, info, parts[1])
	default:
		writeOutcome(w, apperr.New(apperr.NotFound, "no such FHIR endpoint"))
	}
}

func (h *Handler) token(r *http.Request) (*oauth.TokenInfo, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, oauth.ErrTokenInactive
	}
	return h.Flow.Lookup(r.Context(), tok)
}

// granted returns the categories a token limits typ to for perm: nil
// when a scope grants the type whole; ok false when no scope grants it.
func granted(info *oauth.TokenInfo, typ string, perm oauth.Perm) (categories []string, ok bool) {
	if !slices.Contains(Types, typ) {
		return nil, false // a wildcard scope reaches the API's types only
	}
	for _, s := range info.Scopes {
		if !s.Covers(typ, perm) || s.Context == "system" {
			continue
		}
		if len(s.Query) == 0 {
			return nil, true
		}
		categories = append(categories, s.Query["category"]...)
		ok = true
	}
	return categories, ok
}

// read answers a read, or with version a vread.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, req clinical.Request, info *oauth.TokenInfo, typ, id, version string) {
	cats, ok := granted(info, typ, oauth.Read)
	if !ok {
		writeOutcome(w, apperr.New(apperr.Forbidden, "this app was not granted %s records", typ))
		return
	}
	var res, cur *fhir.Resource
	var err error
	if version != "" {
		res, cur, err = h.Gateway.VRead(r.Context(), req, typ, id, version)
	} else {
		res, err = h.Gateway.Read(r.Context(), req, typ, id)
		cur = res
	}
	if err != nil {
		writeOutcome(w, err)
		return
	}
	if cats != nil && (!inCategories(res, cats) || !inCategories(cur, cats)) {
		// Outside the categories granted: as if it were not there.
		writeOutcome(w, apperr.New(apperr.NotFound, "%s/%s is not known", typ, id))
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Write(res.Raw)
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request, req clinical.Request, info *oauth.TokenInfo, typ string) {
	cats, ok := granted(info, typ, oauth.Search)
	if !ok {
		writeOutcome(w, apperr.New(apperr.Forbidden, "this app was not granted %s records", typ))
		return
	}
	params := r.URL.Query()
	revProvenance := false
	if rev, ok := params["_revinclude"]; ok {
		// US Core asks for Provenance of the results, and only that.
		if len(rev) != 1 || rev[0] != "Provenance:target" {
			writeOutcome(w, apperr.New(apperr.Invalid, "_revinclude supports Provenance:target only"))
			return
		}
		revProvenance = true
		delete(params, "_revinclude")
	}
	q, err := fhir.ParseQuery(typ, params, r.Header.Get("Prefer") == "handling=lenient")
	if err != nil {
		writeOutcome(w, err)
		return
	}
	if cats != nil {
		// The granted categories narrow the search before it runs (ANDed
		// with any category the app asked for).
		nq, err := fhir.ParseQuery(typ, url.Values{"category": {strings.Join(escapeAll(cats), ",")}}, false)
		if err != nil {
			writeOutcome(w, err)
			return
		}
		q.Clauses = append(q.Clauses, nq.Clauses...)
	}
	page, err := h.Gateway.Search(r.Context(), req, q)
	if err != nil {
		writeOutcome(w, err)
		return
	}
	page.Held = nil // results the patient waits to see are never sent to apps
	page.Included = h.grantedOnly(info, page.Included)
	if revProvenance {
		if err := h.provenance(r, req, info, page); err != nil {
			writeOutcome(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	json.NewEncoder(w).Encode(fhir.SearchBundle(h.Base, q, page))
}

// grantedOnly keeps the included resources the token may read: an
// _include never reaches a type (or category) the app was not granted.
func (h *Handler) grantedOnly(info *oauth.TokenInfo, rs []*fhir.Resource) []*fhir.Resource {
	var out []*fhir.Resource
	for _, r := range rs {
		if cats, ok := granted(info, r.Type, oauth.Read); ok && (cats == nil || inCategories(r, cats)) {
			out = append(out, r)
		}
	}
	return out
}

// provenance adds the Provenance of the page's matches (their
// _revinclude=Provenance:target), each decided like any read; none when
// the token does not grant Provenance.
func (h *Handler) provenance(r *http.Request, req clinical.Request, info *oauth.TokenInfo, page *fhir.Page) error {
	if _, ok := granted(info, "Provenance", oauth.Search); !ok || len(page.Matches) == 0 {
		return nil
	}
	var targets []string
	for _, m := range page.Matches {
		targets = append(targets, m.Ref())
	}
	for len(targets) > 0 {
		n := min(len(targets), 50)
		q, err := fhir.ParseQuery("Provenance", url.Values{"target": {strings.Join(targets[:n], ",")}, "_count": {strconv.Itoa(fhir.MaxCount)}}, false)
		if err != nil {
			return err
		}
		targets = targets[n:]
		prov, err := h.Gateway.Search(r.Context(), req, q)
		if err != nil {
			return err
		}
		page.Included = append(page.Included, prov.Matches...)
	}
	return nil
}

// everythingCap bounds how many resources of one type $everything returns.
const everythingCap = 5000

// everything answers Patient/ID/$everything for the token's own patient:
// the Patient and every resource of the patient's compartment the token
// may search, type by type, each decided as a search is. Another
// patient's id is 404, as a read of it would be.
func (h *Handler) everything(w http.ResponseWriter, r *http.Request, req clinical.Request, info *oauth.TokenInfo, id string) {
	if id != info.Grant.Patient {
		writeOutcome(w, apperr.New(apperr.NotFound, "Patient/%s is not known", id))
		return
	}
	if _, ok := granted(info, "Patient", oauth.Read); !ok {
		writeOutcome(w, apperr.New(apperr.Forbidden, "this app was not granted Patient records"))
		return
	}
	me, err := h.Gateway.Read(r.Context(), req, "Patient", id)
	if err != nil {
		writeOutcome(w, err)
		return
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "searchset"}
	b.Link = append(b.Link, fhir.Link{Relation: "self", URL: h.Base + "/Patient/" + id + "/$everything"})
	add := func(res *fhir.Resource) {
		b.Entry = append(b.Entry, &fhir.Entry{FullURL: h.Base + "/" + res.Ref(), Resource: res.Raw, Search: &fhir.EntrySearch{Mode: "match"}})
	}
	add(me)
	for _, typ := range Types {
		cats, ok := granted(info, typ, oauth.Search)
		if _, hasPatient := fhir.LookupParam(typ, "patient"); !ok || typ == "Patient" || !hasPatient {
			continue
		}
		vals := url.Values{"patient": {id}, "_count": {strconv.Itoa(fhir.MaxCount)}}
		if cats != nil {
			vals.Set("category", strings.Join(escapeAll(cats), ","))
		}
		q, err := fhir.ParseQuery(typ, vals, false)
		if err != nil {
			writeOutcome(w, err)
			return
		}
		for n := 0; n < everythingCap; {
			page, err := h.Gateway.Search(r.Context(), req, q)
			if err != nil {
				writeOutcome(w, err)
				return
			}
			for _, m := range page.Matches {
				add(m)
			}
			n += len(page.Matches)
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
	}
	total := len(b.Entry)
	b.Total = &total
	w.Header().Set("Content-Type", "application/fhir+json")
	json.NewEncoder(w).Encode(b)
}

// inCategories reports whether a resource has one of the categories
// ("system|code" or "code", which matches any system).
func inCategories(res *fhir.Resource, cats []string) bool {
	tree, err := res.Tree()
	if err != nil {
		return false
	}
	for _, t := range fhir.Extract(res.Type, res.ID, tree).Tokens {
		if t.Param != "category" {
			continue
		}
		for _, c := range cats {
			sys, code, hasSys := strings.Cut(c, "|")
			if !hasSys {
				code = sys
			}
			if t.Code == code && (!hasSys || t.System == sys) {
				return true
			}
		}
	}
	return false
}

// escapeAll escapes commas inside token values, which separate values in
// a FHIR search parameter.
func escapeAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ReplaceAll(v, ",", `\,`)
	}
	return slices.Clip(out)
}

func writeOutcome(w http.ResponseWriter, err error) {
	body, status := fhir.OutcomeJSON(err)
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(body)
}

// origin is the portal's base URL, where the authorization server is.
func (h *Handler) origin() string {
	return strings.TrimSuffix(strings.TrimSuffix(h.Base, "/"), oauth.PathFHIR)
}

// smartConfiguration is SMART App Launch's discovery document: only what
// is offered.
func (h *Handler) smartConfiguration(w http.ResponseWriter) {
	o := h.origin()
	doc := map[string]any{
		"issuer":                                o,
		"jwks_uri":                              o + oauth.PathJWKS,
		"authorization_endpoint":                o + oauth.PathAuthorize,
		"token_endpoint":                        o + oauth.PathToken,
		"introspection_endpoint":                o + oauth.PathIntrospect,
		"revocation_endpoint":                   o + oauth.PathRevoke,
		"userinfo_endpoint":                     o + oauth.PathUserinfo,
		"management_endpoint":                   o + "/sharing/apps",
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"scopes_supported":                 []string{"openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access", "online_access", "patient/*.rs", "patient/*.read"},
		"response_types_supported":         []string{"code"},
		"code_challenge_methods_supported": []string{"S256"},
		"capabilities": []string{"launch-standalone", "launch-ehr", "context-ehr-patient", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
			"sso-openid-connect", "context-standalone-patient", "permission-offline", "permission-online", "permission-patient",
			"permission-v1", "permission-v2", "authorize-post"},
	}
	if h.Registration {
		doc["registration_endpoint"] = o + oauth.PathRegister
	}
	writeJSON(w, "application/json", doc)
}

// kindNames are FHIR's names of the search parameter kinds.
var kindNames = map[fhir.Kind]string{fhir.Token: "token", fhir.Reference: "reference", fhir.Date: "date"}

// metadata is the CapabilityStatement: the types apps may read and
// search, with the search parameters carefront indexes for each.
func (h *Handler) metadata(w http.ResponseWriter) {
	o := h.origin()
	var resources []any
	for _, typ := range Types {
		var params []any
		for _, name := range fhir.ParamNames(typ) {
			p := fhir.Params(typ)[name]
			params = append(params, map[string]any{"name": name, "type": kindNames[p.Kind]})
		}
		res := map[string]any{"type": typ, "interaction": []any{map[string]any{"code": "read"}, map[string]any{"code": "vread"}, map[string]any{"code": "search-type"}},
			"searchParam": params, "searchRevInclude": []string{"Provenance:target"}}
		var inc []string
		for _, name := range fhir.ParamNames(typ) {
			if fhir.Params(typ)[name].Kind == fhir.Reference {
				inc = append(inc, typ+":"+name)
			}
		}
		if len(inc) > 0 {
			res["searchInclude"] = inc
		}
		if typ == "Patient" {
			res["operation"] = []any{map[string]any{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}}
		}
		resources = append(resources, res)
	}
	writeJSON(w, "application/fhir+json", map[string]any{
		"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1", "format": []string{"json"},
		"date": "2026-11-29", "implementation": map[string]any{"description": "carefront patient access API", "url": h.Base},
		"rest": []any{map[string]any{"mode": "server", "resource": resources, "security": map[string]any{
			"service": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}}}},
			"extension": []any{map[string]any{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris", "extension": []any{
				map[string]any{"url": "authorize", "valueUri": o + oauth.PathAuthorize},
				map[string]any{"url": "token", "valueUri": o + oauth.PathToken},
				map[string]any{"url": "revoke", "valueUri": o + oauth.PathRevoke},
				map[string]any{"url": "introspect", "valueUri": o + oauth.PathIntrospect},
			}}},
		}}},
	})
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	json.NewEncoder(w).Encode(v)
}
