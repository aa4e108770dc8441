// Package fhirapi is the FHIR R4 API that SMART apps call (/fhir/R4):
// a bearer token (oauth.Flow) becomes a principal acting for the person
// who connected the app, and every read and search goes through
// clinical.Gateway (access.Decide and the audit trail), intersected with
// the token's scopes: a type the token does not grant is 403, anything
// the person may not see answers as missing, and a granular category
// grant narrows searches before they run.
package fhirapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
	"carefront/internal/oauth"
)

// Handler serves the FHIR API under Base's path.
type Handler struct {
	Flow    *oauth.Flow
	Gateway *clinical.Gateway
	// Base is the API's absolute URL, e.g. https://portal.example/fhir/R4.
	Base string
}

// ServeHTTP answers GET TYPE/ID and GET TYPE?params.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	info, err := h.token(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="carefront", error="invalid_token"`)
		writeOutcome(w, apperr.New(apperr.Unauthorized, "a valid access token is required"))
		return
	}
	req := clinical.Request{Principal: access.Principal{User: "Person/" + info.Grant.Account, Patient: info.Grant.Patient,
		Client: info.Grant.ClientID, Caregiver: info.Grant.Caregiver}, RequestID: r.Header.Get("X-Request-Id")}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && fhir.KnownType(parts[0]):
		h.search(w, r, req, info, parts[0])
	case len(parts) == 2 && fhir.KnownType(parts[0]) && fhir.ValidID(parts[1]):
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
