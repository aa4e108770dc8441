package web

import (
	"net/http"
	"net/url"

	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/telehealth"
)

// wrapUpPage is the clinician's write-back form after a video visit.
type wrapUpPage struct {
	*form
	Visit     *appointments.Appointment
	Patient   staffPatient
	FollowUps []telehealth.FollowUp
	Chosen    map[string]bool
	Max       int
}

// visitHost is the clinician on a visit's participant list, acting for
// its patient (?for=). It answers the request itself when they are not.
func (s *Server) visitHost(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request, *appointments.Appointment) {
	if s.opts.Video == nil || s.opts.Video.Records == nil || s.opts.Appointments == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "Video visits are not offered here."))
		return nil, nil, nil
	}
	u, req := s.patient(w, r)
	if req == nil {
		return nil, nil, nil
	}
	if u.account.Kind != identity.Staff {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Only the clinician writes a visit's summary."))
		return nil, nil, nil
	}
	a, err := s.opts.Appointments.Get(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil, nil
	}
	if !a.Video || u.account.PractitionerID == "" || u.account.PractitionerID != a.Clinician {
		s.auditVideoRefusal(r.Context(), telehealth.Arrival{Appointment: a.ID, Patient: a.Patient, Participant: "Person/" + u.account.ID,
			Address: clientAddr(r), Session: sessionHash(u.token)}, "wrapup-not-on-visit")
		s.renderError(w, r, telehealth.ErrNotOnVisit)
		return nil, nil, nil
	}
	return u, req, a
}

func (s *Server) showWrapUp(w http.ResponseWriter, r *http.Request) error {
	_, req, a := s.visitHost(w, r)
	if a == nil {
		return nil
	}
	return s.renderWrapUp(w, r, req, a, newForm(), http.StatusOK)
}

func (s *Server) renderWrapUp(w http.ResponseWriter, r *http.Request, req *clinical.Request, a *appointments.Appointment, f *form, status int) error {
	who, err := s.staffPatients(r.Context(), *req, []string{a.Patient}, nil)
	if err != nil {
		return err
	}
	a.Start, a.End = a.Start.In(s.zone()), a.End.In(s.zone())
	chosen := map[string]bool{}
	for _, c := range r.Form["task"] {
		chosen[c] = true
	}
	p := s.newPage(w, r, "wrapup.title")
	p.Status = status
	p.Data = wrapUpPage{form: f, Visit: a, Patient: who[a.Patient], FollowUps: telehealth.FollowUps, Chosen: chosen, Max: telehealth.MaxSummary}
	return s.render(w, r, "staff_wrapup", p)
}

func (s *Server) submitWrapUp(w http.ResponseWriter, r *http.Request) error {
	_, req, a := s.visitHost(w, r)
	if a == nil {
		return nil
	}
	f := newForm()
	f.Values["summary"], f.Values["other"] = r.FormValue("summary"), r.FormValue("other")
	err := s.opts.Video.Records.WriteBack(r.Context(), s.opts.Clinical, *req, telehealth.Visit{ID: a.ID, Patient: a.Patient,
		Clinician: a.Clinician, ServiceType: a.TypeName, Start: a.Start, End: a.End},
		telehealth.WrapUp{Summary: r.FormValue("summary"), Tasks: r.Form["task"], Other: r.FormValue("other")})
	if inputErr(f, err) {
		status := http.StatusUnprocessableEntity
		if apperr.CodeOf(err) == apperr.Conflict {
			status = http.StatusConflict
		}
		return s.renderWrapUp(w, r, req, a, f, status)
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/staff/visits?done=wrapup")
}

// submitSurvey records the patient's three answers about a video visit.
func (s *Server) submitSurvey(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Video == nil || s.opts.Video.Records == nil || s.opts.Appointments == nil {
		return apperr.New(apperr.NotFound, "no such visit")
	}
	_, req := s.patient(w, r)
	if req == nil {
		return nil
	}
	a, err := s.opts.Appointments.Get(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	answers := map[string]string{}
	for _, q := range telehealth.Survey {
		answers[q.LinkID] = r.FormValue(q.LinkID)
	}
	err = s.opts.Video.Records.Answer(r.Context(), s.opts.Clinical, *req, a.ID, a.Patient, answers)
	f := newForm()
	if inputErr(f, err) {
		status := http.StatusUnprocessableEntity
		if apperr.CodeOf(err) == apperr.Conflict {
			status = http.StatusConflict
		}
		return s.showVisitForm(w, r, req, "visit", f, status)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "visit.title", nil)
	return redirect(w, r, p.R("/visits/"+url.PathEscape(a.ID)+"?done=survey"))
}
