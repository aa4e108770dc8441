package web

import (
	"net/http"
	"slices"
	"strings"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/fhir"
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
	if u == nil {
		return nil, nil
	}
	return s.opts.Views.Results(r.Context(), *req, views.ResultsOptions{Before: before, Lang: s.lang(w, r)})
}

// maxShowNow bounds the results one "Show it now" releases (a report and
// its parts).
const maxShowNow = 100

// submitShowNow releases held results the patient asks to see before
// their care team has reviewed them.
func (s *Server) submitShowNow(w http.ResponseWriter, r *http.Request) error {
	u, _ := s.patient(w, r)
	if u == nil {
		return nil
	}
	refs := r.PostForm["ref"]
	if len(refs) == 0 || len(refs) > maxShowNow {
		return apperr.New(apperr.Invalid, "Choose a result to show.")
	}
	for _, ref := range refs {
		typ, id, ok := fhir.ParseRef(ref)
		if !ok || (typ != "Observation" && typ != "DiagnosticReport") || ref != typ+"/"+id {
			return apperr.New(apperr.Invalid, "ref must name a result, like Observation/123")
		}
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	if err := s.opts.Policies.ShowNow(r.Context(), u.account.PatientID, refs, access.Change{User: "Person/" + u.account.ID, Address: clientAddr(r)}); err != nil {
		return err
	}
	to := "/results"
	if k := r.PostFormValue("key"); k != "" && !strings.ContainsAny(k, "/?#\\") {
		to = "/results/" + views.KeyPath(k)
	}
	return redirect(w, r, to)
}
