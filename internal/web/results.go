package web

import (
	"net/http"
	"slices"

	"carefront/internal/access"
	"carefront/internal/views"
)

// showResults lists results by report and date, newest first, a page at
// a time (?before=).
func (s *Server) showResults(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildResults(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "results", s.recordPage(w, r, "results.title", v))
}

func (s *Server) apiResults(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildResults(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildResults(w http.ResponseWriter, r *http.Request) (*views.Results, error) {
	before, err := views.ParseBefore(r.URL.Query().Get("before"))
	if err != nil {
		return nil, err
	}
	u, req := s.patient(w, r)
	if u == nil || s.shares(w, r, req, "Observation") {
		return nil, nil
	}
	return s.opts.Views.Results(r.Context(), *req, views.ResultsOptions{Before: before, Lang: s.lang(w, r)})
}

// submitShowNow releases held results the patient asks to see before
// their care team has reviewed them: only results of theirs that wait.
func (s *Server) submitShowNow(w http.ResponseWriter, r *http.Request) error {
	u, req := s.patient(w, r)
	if u == nil || s.selfOnly(w, r, req) {
		return nil
	}
	refs := slices.Compact(slices.Sorted(slices.Values(r.PostForm["ref"])))
	if err := s.opts.Views.CheckHeld(r.Context(), *req, refs); err != nil {
		return err
	}
	if err := s.opts.Policies.ShowNow(r.Context(), u.account.PatientID, refs, access.Change{User: "Person/" + u.account.ID, Address: clientAddr(r)}); err != nil {
		return err
	}
	to := "/results"
	if r.PostFormValue("back") == "documents" {
		to = "/documents"
	}
	if k := r.PostFormValue("key"); k != "" {
		if _, _, err := views.ParseKey(k); err == nil {
			to = "/results/" + views.KeyPath(k)
		}
	}
	return redirect(w, r, to)
}
