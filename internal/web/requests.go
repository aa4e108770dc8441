package web

import (
	"errors"
	"net/http"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/requests"
	"carefront/internal/telemetry"
	"carefront/internal/views"
)

// medicationsPage is the medications view with the record's refill
// requests and whether the person may ask for more.
type medicationsPage struct {
	*views.Medications
	Requests []requests.Request
	CanAsk   bool
	Done     bool
}

// refillPage is the refill form of one medicine.
type refillPage struct {
	*form
	Medicine   *requests.Medicine
	Pharmacies []requests.Pharmacy
}

// refillPatient is the person and record of a refill page: the record's
// owner, or a caregiver whose grant covers medicines. It reports nil when
// it answered.
func (s *Server) refillPatient(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	if s.opts.Requests == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "Requests to the care team are not offered here."))
		return nil, nil
	}
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	if u.account.Kind == identity.Staff {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Staff answer requests from their queue."))
		return nil, nil
	}
	return u, req
}

func (s *Server) showRefill(w http.ResponseWriter, r *http.Request) error {
	_, req := s.refillPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	chosen, err := s.opts.Requests.Chosen(r.Context(), req.Principal.Patient)
	if err != nil {
		return err
	}
	f.Values["pharmacy"] = chosen
	return s.showRefillForm(w, r, req, f, http.StatusOK)
}

func (s *Server) showRefillForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	m, err := s.opts.Requests.Medicine(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	var ie *apperr.FieldError
	if errors.As(err, &ie) && m != nil {
		f.Errors["medicine"] = ie.Key
		status = http.StatusConflict
	} else if err != nil {
		return err
	}
	phs, err := s.opts.Requests.Pharmacies(r.Context())
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "requests.title."+m.Kind, refillPage{form: f, Medicine: m, Pharmacies: phs})
	if m.Kind == "" {
		p = s.recordPage(w, r, "requests.title.refill", refillPage{form: f, Medicine: m, Pharmacies: phs})
	}
	p.Status = status
	return s.render(w, r, "refill", p)
}

func (s *Server) submitRefill(w http.ResponseWriter, r *http.Request) error {
	u, req := s.refillPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	f.Values["pharmacy"] = r.PostFormValue("pharmacy")
	_, err := s.opts.Requests.Ask(r.Context(), s.opts.Clinical, *req, u.account.ID, r.PathValue("id"), f.Values["pharmacy"])
	if inputErr(f, err) {
		status := http.StatusUnprocessableEntity
		if apperr.CodeOf(err) == apperr.Conflict {
			status = http.StatusConflict
		}
		return s.showRefillForm(w, r, req, f, status)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "meds.title", nil)
	return redirect(w, r, p.R("/medications?done=refill"))
}

// requestsStaff is a clinician at their queue of patients' requests.
func (s *Server) requestsStaff(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	if s.opts.Requests == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "Requests are not offered here."))
		return nil, nil
	}
	u := s.requireMFA(w, r)
	if u == nil {
		return nil, nil
	}
	if u.account.Kind != identity.Staff || u.account.StaffRole != access.RoleClinician {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Requests are answered by clinicians."))
		return nil, nil
	}
	return u, &clinical.Request{Principal: principal(u, r), RequestID: telemetry.RequestID(r.Context())}
}

type staffRequestsPage struct {
	*form
	Requests []requests.Request
	// Patients names each request's patient.
	Patients map[string]staffPatient
	Done     bool
	Now      time.Time
}

// showStaffRequests lists the open requests of the clinician's patients,
// oldest first.
func (s *Server) showStaffRequests(w http.ResponseWriter, r *http.Request) error {
	_, req := s.requestsStaff(w, r)
	if req == nil {
		return nil
	}
	return s.showStaffRequestsForm(w, r, req, newForm(), http.StatusOK)
}

func (s *Server) showStaffRequestsForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	list, err := s.opts.Requests.Queue(r.Context(), s.opts.Clinical, *req, s.opts.Clinical.CaresFor)
	if err != nil {
		return err
	}
	ids := make([]string, len(list))
	for i, rq := range list {
		ids[i] = rq.Patient
	}
	who, err := s.staffPatients(r.Context(), *req, ids, nil)
	if err != nil {
		return err
	}
	p := s.newPage(w, r, "requests.queue.title")
	p.Data = staffRequestsPage{form: f, Requests: list, Patients: who, Done: r.FormValue("done") == "1", Now: s.now()}
	p.Status = status
	return s.render(w, r, "staff_requests", p)
}

// submitStaffRequest answers one request.
func (s *Server) submitStaffRequest(w http.ResponseWriter, r *http.Request) error {
	_, req := s.requestsStaff(w, r)
	if req == nil {
		return nil
	}
	id := r.PathValue("id")
	err := s.opts.Requests.Answer(r.Context(), s.opts.Clinical, *req, id, r.PostFormValue("status"), r.PostFormValue("reason"), s.opts.Clinical.CaresFor)
	f := newForm()
	if inputErr(f, err) {
		// The errors belong to this request's form.
		for k, v := range f.Errors {
			delete(f.Errors, k)
			f.Errors[id+"-"+k] = v
		}
		f.Values[id+"-reason"] = r.PostFormValue("reason")
		return s.showStaffRequestsForm(w, r, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/staff/requests?done=1")
}
