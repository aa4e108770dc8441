package web

import (
	"net/http"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/messaging"
	"carefront/internal/telemetry"
)

// The care team's inbox (/staff/inbox): clinicians and support staff, with
// their second factor, answer the threads of the pools they are members
// of. Every opening of a thread is audited with the staff member as agent
// and the patient as subject (messaging.Store.Thread).

type inboxPage struct {
	Threads []messaging.Thread
	// Patients names each thread's patient.
	Patients map[string]staffPatient
	Now      time.Time
	// Closed says a thread was just set aside as done.
	Closed bool
}

type staffThreadPage struct {
	*form
	Thread   *messaging.Thread
	Patient  staffPatient
	Messages []messageView
	Account  string
	Done     string
}

// inboxStaff lets through a clinician or support staff member signed in
// with their second factor, with the request that acts for them (their
// pools in the principal).
func (s *Server) inboxStaff(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	if !s.messagesOn(w, r) {
		return nil, nil
	}
	u := s.requireMFA(w, r)
	if u == nil {
		return nil, nil
	}
	if u.account.Kind != identity.Staff || (u.account.StaffRole != access.RoleClinician && u.account.StaffRole != access.RoleSupport) {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "The inbox is for clinicians and support staff."))
		return nil, nil
	}
	pools, err := s.opts.Messages.MemberOf(r.Context(), u.account.ID)
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil
	}
	p := principal(u, r)
	p.Pools = pools
	return u, &clinical.Request{Principal: p, RequestID: telemetry.RequestID(r.Context())}
}

func (s *Server) showInbox(w http.ResponseWriter, r *http.Request) error {
	_, req := s.inboxStaff(w, r)
	if req == nil {
		return nil
	}
	ths, err := s.opts.Messages.Inbox(r.Context(), s.opts.Clinical, *req)
	if err != nil {
		return err
	}
	ids, pools := make([]string, len(ths)), make([]string, len(ths))
	for i := range ths {
		ids[i], pools[i] = ths[i].Patient, ths[i].Pool
		ths[i].Waiting = ths[i].Waiting.In(s.zone()) // shown in the clinic's time zone
	}
	who, err := s.staffPatients(r.Context(), *req, ids, pools)
	if err != nil {
		return err
	}
	p := s.newPage(w, r, "inbox.title")
	p.Data = inboxPage{Threads: ths, Patients: who, Now: s.now(), Closed: r.FormValue("done") == "closed"}
	return s.render(w, r, "staff_inbox", p)
}

func (s *Server) showInboxThread(w http.ResponseWriter, r *http.Request) error {
	u, req := s.inboxStaff(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	th := r.PathValue("id")
	if patient, err := s.opts.Messages.ThreadPatient(r.Context(), th); err == nil {
		dr, err := s.opts.Messages.LoadDraft(r.Context(), u.account.ID, patient, th)
		if err != nil {
			return err
		}
		if dr != nil {
			f.Values["text"] = dr.Text
		}
	}
	return s.showInboxThreadForm(w, r, u, req, f, http.StatusOK)
}

func (s *Server) showInboxThreadForm(w http.ResponseWriter, r *http.Request, u *signedIn, req *clinical.Request, f *form, status int) error {
	th, err := s.opts.Messages.Thread(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	th.Waiting = th.Waiting.In(s.zone())
	who, err := s.staffPatients(r.Context(), *req, []string{th.Patient}, []string{th.Pool})
	if err != nil {
		return err
	}
	p := s.newPage(w, r, "inbox.thread.title")
	p.Status = status
	done := r.FormValue("done")
	if done != "sent" && done != "assigned" && done != "closed" && done != "draft" {
		done = ""
	}
	caregivers, err := s.caregiverLabels(r.Context(), th.Patient)
	if err != nil {
		return err
	}
	p.Data = staffThreadPage{form: f, Thread: th, Patient: who[th.Patient], Messages: staffMessageViews(p, th, caregivers, s.zone()), Account: u.account.ID, Done: done}
	return s.render(w, r, "staff_thread", p)
}

func (s *Server) submitInboxReply(w http.ResponseWriter, r *http.Request) error {
	u, req := s.inboxStaff(w, r)
	if req == nil {
		return nil
	}
	f, files, err := messageForm(r, "text")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	who := messaging.Author{Account: u.account.ID, Kind: messaging.ByStaff, Name: u.account.DisplayName}
	if r.PostFormValue("action") == "draft" {
		err := s.opts.Messages.SaveDraft(r.Context(), s.opts.Clinical, *req, who, messaging.Draft{Thread: id, Text: f.Values["text"]})
		if inputErr(f, err) {
			return s.showInboxThreadForm(w, r, u, req, f, http.StatusUnprocessableEntity)
		}
		if err != nil {
			return err
		}
		return redirect(w, r, "/staff/inbox/"+id+"?done=draft")
	}
	_, err = s.opts.Messages.Send(r.Context(), s.opts.Clinical, *req, who, id, f.Values["text"], files...)
	if inputErr(f, err) {
		return s.showInboxThreadForm(w, r, u, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/staff/inbox/"+id+"?done=sent")
}

func (s *Server) submitInboxAssign(w http.ResponseWriter, r *http.Request) error {
	u, req := s.inboxStaff(w, r)
	if req == nil {
		return nil
	}
	id := r.PathValue("id")
	if err := s.opts.Messages.Assign(r.Context(), s.opts.Clinical, *req, id, u.account.ID); err != nil {
		return err
	}
	return redirect(w, r, "/staff/inbox/"+id+"?done=assigned")
}

func (s *Server) submitInboxDone(w http.ResponseWriter, r *http.Request) error {
	_, req := s.inboxStaff(w, r)
	if req == nil {
		return nil
	}
	id := r.PathValue("id")
	if err := s.opts.Messages.MarkDone(r.Context(), s.opts.Clinical, *req, id); err != nil {
		return err
	}
	return redirect(w, r, "/staff/inbox?done=closed")
}

func (s *Server) showInboxFile(w http.ResponseWriter, r *http.Request) error {
	_, req := s.inboxStaff(w, r)
	if req == nil {
		return nil
	}
	return s.sendFile(w, r, req)
}

// staffMessageViews labels a thread's messages for the team: the patient,
// a caregiver on their behalf, a colleague by name, or the automatic
// reply.
func staffMessageViews(p page, th *messaging.Thread, caregivers map[string]string, zone *time.Location) []messageView {
	out := make([]messageView, len(th.Messages))
	for i, m := range th.Messages {
		v := messageView{Message: m, Files: links(m, func(id string) string { return "/staff/inbox/" + th.ID + "/files/" + id })}
		v.Sent, v.ReadAt = v.Sent.In(zone), v.ReadAt.In(zone)
		v.ReadState, v.Read, v.NotRead = m.AuthorKind == messaging.ByStaff, "inbox.read", "inbox.notread"
		switch m.AuthorKind {
		case messaging.ByStaff:
			v.From = m.AuthorName
		case messaging.ByCarefront:
			v.From = p.T("messages.from.auto", "Team", th.PoolName)
		case messaging.ByCaregiver:
			v.From = p.T("inbox.from.caregiver")
			if c := caregivers[m.Author]; c != "" {
				v.From = p.T("inbox.from.caregiver.named", "Name", c)
			}
		default:
			v.From = p.T("inbox.from.patient")
			v.Ours = true
		}
		if m.AuthorKind == messaging.ByCaregiver {
			v.Ours = true
		}
		out[i] = v
	}
	return out
}
