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
		Client: info.Grant.ClientID, Caregiver: info.Grant.Caregiver}, RequestID: telemetry.RequestID(r.Context())}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && slices.Contains(Types, parts[0]):
		h.search(w, r, req, info, parts[0])
	case len(parts) == 2 && slices.Contains(Types, parts[0]) && fhir.ValidID(parts[1]):
		h.read(w, r, req, info, parts[0], parts[1])
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

func (h *Handler) read(w http.ResponseWriter, r *http.Request, req clinical.Request, info *oauth.TokenInfo, typ, id string) {
	cats, ok := granted(info, typ, oauth.Read)
	if !ok {
		writeOutcome(w, apperr.New(apperr.Forbidden, "this app was not granted %s records", typ))
		return
	}
	res, err := h.Gateway.Read(r.Context(), req, typ, id)
	if err != nil {
		writeOutcome(w, err)
		return
	}
	if cats != nil && !inCategories(res, cats) {
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
	q, err := fhir.ParseQuery(typ, r.URL.Query(), r.Header.Get("Prefer") == "handling=lenient")
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
	w.Header().Set("Content-Type", "application/fhir+json")
	json.NewEncoder(w).Encode(fhir.SearchBundle(h.Base, q, page))
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
	writeJSON(w, "application/json", map[string]any{
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
		"scopes_supported":                 []string{"openid", "fhirUser", "launch/patient", "offline_access", "online_access", "patient/*.rs", "patient/*.read"},
		"response_types_supported":         []string{"code"},
		"code_challenge_methods_supported": []string{"S256"},
		"capabilities": []string{"launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
			"sso-openid-connect", "context-standalone-patient", "permission-offline", "permission-online", "permission-patient",
			"permission-v1", "permission-v2", "authorize-post"},
	})
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
		resources = append(resources, map[string]any{"type": typ, "interaction": []any{map[string]any{"code": "read"}, map[string]any{"code": "search-type"}},
			"searchParam": params})
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
