package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/session"
	"carefront/internal/telemetry"
)

// The signed-in portal: what every page and view of a person's own record
// shares. Pages render what the views package builds; they read nothing
// themselves.

// navItem is one entry of the record navigation.
type navItem struct {
	Path, Label string
	Current     bool
}

// navPaths are the record pages, in the order the navigation lists them.
var navPaths = []struct{ path, label string }{
	{"/", "nav.home"}, {"/results", "nav.results"}, {"/visits", "nav.visits"}, {"/medications", "nav.medications"},
	{"/summary", "nav.summary"}, {"/documents", "nav.documents"}, {"/timeline", "nav.timeline"},
}

// nav marks the page the request is on (or under).
func nav(path string) []navItem {
	out := make([]navItem, len(navPaths))
	for i, n := range navPaths {
		cur := path == n.path || (n.path != "/" && strings.HasPrefix(path, n.path+"/"))
		out[i] = navItem{Path: n.path, Label: n.label, Current: cur}
	}
	return out
}

// isAPI reports whether the request is for the JSON view API, which
// answers with JSON, never a redirect.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

var errSignIn = apperr.New(apperr.Unauthorized, "Sign in to see your record.")

// patient lets through a person signed in with both factors who has a
// record of their own, and returns the request the views decide for. A
// page sends anyone else where they can go on: to sign in, to finish
// signing in, or home (staff, and people with no record of their own); a
// view answers 401 or 403 JSON. It returns nil when it answered.
func (s *Server) patient(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	u := currentUser(r.Context())
	if isAPI(r) {
		switch {
		case u == nil || u.session.Level != session.LevelMFA || u.account.EmailVerified.IsZero():
			s.renderError(w, r, errSignIn)
			return nil, nil
		case u.account.Kind != identity.Person || u.account.PatientID == "":
			s.renderError(w, r, apperr.New(apperr.Forbidden, "This account has no record of its own."))
			return nil, nil
		}
	} else {
		if u = s.requireMFA(w, r); u == nil {
			return nil, nil
		}
		if u.account.Kind != identity.Person || u.account.PatientID == "" {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return nil, nil
		}
	}
	return u, &clinical.Request{Principal: principal(u, r), RequestID: telemetry.RequestID(r.Context())}
}

// recordPage starts a page of the person's record, with its navigation.
func (s *Server) recordPage(w http.ResponseWriter, r *http.Request, titleID string, data any) page {
	p := s.newPage(w, r, titleID)
	p.Nav = nav(r.URL.Path)
	p.Data = data
	return p
}

// writeView answers a view request with its JSON.
func writeView(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	return json.NewEncoder(w).Encode(v)
}

// lang is the request's language tag as views take it (en or es).
func (s *Server) lang(w http.ResponseWriter, r *http.Request) string {
	return s.translator(w, r).Tag.String()
}
