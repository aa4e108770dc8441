package web

import (
	"net/http"
	"net/url"

	"carefront/internal/access"
	"carefront/internal/identity"
	"carefront/internal/session"
	"carefront/internal/views"
)

// showHome renders the home page: for a signed-in patient their record at
// a glance; for staff a plain landing page with no patient data; for a
// person with no record of their own an explanation; for everyone else
// the public page, what the portal is and the way in.
func (s *Server) showHome(w http.ResponseWriter, r *http.Request) error {
	u := currentUser(r.Context())
	if u == nil || s.opts.Views == nil || u.session.Level != session.LevelMFA || u.account.EmailVerified.IsZero() {
		return s.render(w, r, "home", s.newPage(w, r, "home.title"))
	}
	if u.account.Kind == identity.Staff && r.URL.Query().Get("for") == "" {
		p := s.newPage(w, r, "staff.home.title")
		p.Data = u.account.StaffRole == access.RoleClinician && u.account.PractitionerID != "" // may open records
		return s.render(w, r, "staff_home", p)
	}
	if s.termsGate(w, r, u) {
		return nil
	}
	ended, err := s.endedAccess(r, u)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("for") == "" && u.account.PatientID == "" && u.account.Kind == identity.Person {
		// No record of their own: the records they hold, or a word on how
		// to get access.
		choices, err := s.heldRecords(r, u, s.now())
		if err != nil {
			return err
		}
		if len(choices) == 1 && ended == nil {
			return redirect(w, r, "/?for="+url.QueryEscape(choices[0].For))
		}
		p := s.newPage(w, r, "norecord.title")
		if len(choices) > 0 {
			p.TitleID = "records.title"
		}
		p.Data, p.Ended = choices, ended
		return s.render(w, r, "no_record", p)
	}
	v, err := s.buildHome(w, r)
	if v == nil {
		return err
	}
	p := s.recordPage(w, r, "homep.title", v)
	p.Ended = ended
	return s.render(w, r, "home_patient", p)
}

// endedAccess is the notice for a caregiver sent home because their
// access to a record has ended (?ended=ID): whose record it was, when
// they held a grant for it. Nil when the request names none.
func (s *Server) endedAccess(r *http.Request, u *signedIn) (*endedNotice, error) {
	id := r.URL.Query().Get("ended")
	if id == "" || s.opts.Grants == nil {
		return nil, nil
	}
	gs, err := s.opts.Grants.ForCaregiver(r.Context(), u.account.ID)
	if err != nil {
		return nil, err
	}
	n := &endedNotice{}
	for _, g := range gs {
		if g.Patient == id {
			n.Name = g.PatientName
			break
		}
	}
	return n, nil
}

// buildHome builds the home view for the signed-in patient; nil when it
// answered.
func (s *Server) buildHome(w http.ResponseWriter, r *http.Request) (*views.Home, error) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	ctx := r.Context()
	in := views.HomeInput{Lang: s.lang(w, r), Passkeys: 1, RecoveryCodesLeft: 10}
	since, err := s.opts.Sessions.PreviousSignIn(ctx, u.account.ID, u.session.IDHash, u.session.Created)
	if err != nil {
		return nil, err
	}
	in.Since = since
	if s.opts.Auth != nil {
		f, err := s.opts.Auth.Store.Factors(ctx, u.account.ID)
		if err != nil {
			return nil, err
		}
		in.Passkeys, in.RecoveryCodesLeft = len(f.Passkeys), f.RecoveryCodes
	}
	return s.opts.Views.Home(ctx, *req, in)
}

// apiHome is the home view as JSON.
func (s *Server) apiHome(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildHome(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}
