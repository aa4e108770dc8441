package web

import (
	"net/http"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/requests"
)

type correctionsPage struct {
	*form
	Corrections []requests.Request
	Done        string
}

type correctionNewPage struct {
	*form
	Item *requests.Item
	// Earlier are the corrections asked before of this item, with the
	// care team's answers and any statement of disagreement: kept with it.
	Earlier []requests.Request
}

// showCorrections lists the record's correction requests: status, the
// care team's answer, the deadline, and after a denial the statement of
// disagreement (or the form to add one).
func (s *Server) showCorrections(w http.ResponseWriter, r *http.Request) error {
	_, req := s.refillPatient(w, r)
	if req == nil {
		return nil
	}
	return s.showCorrectionsForm(w, r, req, newForm(), http.StatusOK)
}

func (s *Server) showCorrectionsForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	list, err := s.opts.Requests.Corrections(r.Context(), s.opts.Clinical, *req)
	if err != nil {
		return err
	}
	done := r.FormValue("done")
	if done != "sent" && done != "statement" {
		done = ""
	}
	p := s.recordPage(w, r, "corrections.title", correctionsPage{form: f, Corrections: list, Done: done})
	p.Status = status
	return s.render(w, r, "corrections", p)
}

// showNewCorrection asks what is wrong with one item of the record.
func (s *Server) showNewCorrection(w http.ResponseWriter, r *http.Request) error {
	_, req := s.refillPatient(w, r)
	if req == nil {
		return nil
	}
	return s.showNewCorrectionForm(w, r, req, newForm(), http.StatusOK)
}

func (s *Server) showNewCorrectionForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	it, err := s.opts.Requests.CorrectionItem(r.Context(), s.opts.Clinical, *req, r.FormValue("item"))
	if err != nil {
		return err
	}
	all, err := s.opts.Requests.Corrections(r.Context(), s.opts.Clinical, *req)
	if err != nil {
		return err
	}
	var earlier []requests.Request
	for _, c := range all {
		if c.Focus == it.Ref {
			earlier = append(earlier, c)
		}
	}
	p := s.recordPage(w, r, "corrections.new.title", correctionNewPage{form: f, Item: it, Earlier: earlier})
	p.Status = status
	return s.render(w, r, "correction_new", p)
}

func (s *Server) submitNewCorrection(w http.ResponseWriter, r *http.Request) error {
	u, req := s.refillPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	f.Values["wrong"], f.Values["should"] = r.PostFormValue("wrong"), r.PostFormValue("should")
	_, err := s.opts.Requests.AskCorrection(r.Context(), s.opts.Clinical, *req, u.account.ID, r.FormValue("item"), f.Values["wrong"], f.Values["should"])
	if inputErr(f, err) {
		status := http.StatusUnprocessableEntity
		if apperr.CodeOf(err) == apperr.Conflict {
			status = http.StatusConflict
		}
		return s.showNewCorrectionForm(w, r, req, f, status)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "corrections.title", nil)
	return redirect(w, r, p.R("/corrections?done=sent"))
}

func (s *Server) submitDisagreement(w http.ResponseWriter, r *http.Request) error {
	_, req := s.refillPatient(w, r)
	if req == nil {
		return nil
	}
	id := r.PathValue("id")
	f := newForm()
	f.Values[id+"-statement"] = r.PostFormValue("statement")
	err := s.opts.Requests.Disagree(r.Context(), s.opts.Clinical, *req, id, r.PostFormValue("statement"))
	if inputErr(f, err) {
		for k, v := range f.Errors {
			delete(f.Errors, k)
			f.Errors[id+"-"+k] = v
		}
		return s.showCorrectionsForm(w, r, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "corrections.title", nil)
	return redirect(w, r, p.R("/corrections?done=statement"))
}
