package web

import (
	"net/http"
	"net/url"

	"carefront/internal/apperr"
	"carefront/internal/consent"
	"carefront/internal/identity"
)

// The terms of use: a person accepts the current version before their
// record shows, and again when a new version is published. The rules
// live in consent.TermsBook.

// termsGate sends a person who has not accepted the current terms to
// read them (a view answers 403 JSON); it reports whether it answered.
func (s *Server) termsGate(w http.ResponseWriter, r *http.Request, u *signedIn) bool {
	if s.opts.Terms == nil || u == nil || u.account.Kind != identity.Person {
		return false
	}
	t, err := s.opts.Terms.Pending(r.Context(), u.account.ID)
	if err != nil {
		s.renderError(w, r, err)
		return true
	}
	if t == nil {
		return false
	}
	if isAPI(r) || r.Method != http.MethodGet {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Accept the portal's terms of use first."))
		return true
	}
	http.Redirect(w, r, "/terms?"+url.Values{"return": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
	return true
}

type termsPage struct {
	Terms  *consent.Terms
	Text   string
	Return string
}

// showTerms shows the current terms in the person's language.
func (s *Server) showTerms(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Terms == nil {
		return apperr.New(apperr.NotFound, "no terms are published")
	}
	t, err := s.opts.Terms.Current(r.Context())
	if err != nil {
		return err
	}
	if t == nil {
		return apperr.New(apperr.NotFound, "no terms are published")
	}
	p := s.newPage(w, r, "terms.title")
	p.Data = termsPage{Terms: t, Text: t.Text(s.lang(w, r)), Return: localPath(r.URL.Query().Get("return"))}
	return s.render(w, r, "terms", p)
}

// submitTerms records the signed-in person's acceptance of the version
// they read, and goes back to where they were going.
func (s *Server) submitTerms(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if s.opts.Terms == nil {
		return apperr.New(apperr.NotFound, "no terms are published")
	}
	if err := s.opts.Terms.Accept(r.Context(), u.account.ID, r.PostFormValue("version"), clientAddr(r)); err != nil {
		if apperr.CodeOf(err) == apperr.Conflict {
			return redirect(w, r, "/terms")
		}
		return err
	}
	return redirect(w, r, localPath(r.PostFormValue("return")))
}

// submitResearch joins or leaves a study for the person's own record.
func (s *Server) submitResearch(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if r.FormValue("for") != "" {
		s.refuseCaregiver(w, r, "Person/"+u.account.ID, r.FormValue("for"))
		return nil
	}
	if s.opts.Research == nil || u.account.PatientID == "" {
		return apperr.New(apperr.Forbidden, "This account has no record of its own.")
	}
	join := r.PostFormValue("join") == "1"
	if err := s.opts.Research.Join(r.Context(), r.PostFormValue("study"), u.account.PatientID, join, "Person/"+u.account.ID, clientAddr(r)); err != nil {
		return err
	}
	return redirect(w, r, "/sharing?done=research")
}
