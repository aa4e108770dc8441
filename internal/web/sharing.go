package web

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/consent"
	"carefront/internal/views"
)

// Sharing & privacy: who can see a patient's information, and the
// caregivers they invite and stop. The rules (what a grant covers, who
// may end it) live in package consent; the decision in package access.

// grantCard is one caregiver grant as the sharing page shows it.
type grantCard struct {
	consent.Grant
	// Kinds are the kinds of data shared (access.DataKinds names); none
	// for full access.
	Kinds []string
	// Never are the sensitive kinds kept back (consent.NeverKinds names).
	Never []string
	// State is waiting, active, ended or revoked.
	State string
}

type sharingPage struct {
	Own        bool        // the person has a record of their own to share
	Caregivers []grantCard // grants of the person's own record
	Earlier    []grantCard // ended and revoked ones: the history
	Held       []grantCard // records others shared with the person
	Notice     string      // catalogue id of what just happened
	// Apps says apps can connect; AppCount is how many are connected to
	// the person's own record now; RecentApps the latest connections and
	// disconnections.
	Apps       bool
	AppCount   int
	RecentApps []appCard
	Studies    []consent.Study
	Terms      []consent.Acceptance
}

// showSharing shows who can see the person's information, and the
// records others share with them.
func (s *Server) showSharing(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if s.opts.Grants == nil {
		return apperr.New(apperr.NotFound, "sharing is not available")
	}
	ctx := r.Context()
	now := s.now()
	d := sharingPage{}
	if s.termsGate(w, r, u) {
		return nil
	}
	switch r.URL.Query().Get("done") {
	case "invited", "revoked", "left", "research":
		d.Notice = "sharing.done." + r.URL.Query().Get("done")
	}
	if u.account.PatientID != "" {
		d.Own = true
		gs, err := s.opts.Grants.List(ctx, u.account.PatientID)
		if err != nil {
			return err
		}
		for _, g := range gs {
			c := card(g, now)
			if c.State == "active" || c.State == "waiting" {
				d.Caregivers = append(d.Caregivers, c)
			} else {
				d.Earlier = append(d.Earlier, c)
			}
		}
	}
	if s.opts.Apps != nil && d.Own {
		d.Apps = true
		cards, err := s.appCards(r, u.account.PatientID)
		if err != nil {
			return err
		}
		for _, c := range cards {
			if c.State == "active" {
				d.AppCount++
			}
		}
		d.RecentApps = cards[:min(len(cards), 5)]
	}
	var err error
	if s.opts.Research != nil && d.Own {
		if d.Studies, err = s.opts.Research.Studies(ctx, u.account.PatientID); err != nil {
			return err
		}
	}
	if s.opts.Terms != nil {
		if d.Terms, err = s.opts.Terms.Accepted(ctx, u.account.ID); err != nil {
			return err
		}
	}
	held, err := s.opts.Grants.ForCaregiver(ctx, u.account.ID)
	if err != nil {
		return err
	}
	for _, g := range held {
		if c := card(g, now); c.State == "active" {
			d.Held = append(d.Held, c)
		}
	}
	p := s.newPage(w, r, "sharing.title")
	p.Data = d
	return s.render(w, r, "sharing", p)
}

// card describes a grant for the page at now.
func card(g consent.Grant, now time.Time) grantCard {
	c := grantCard{Grant: g, State: "active"}
	switch {
	case !g.Revoked.IsZero():
		c.State = "revoked"
	case !g.Active(now) || g.Proxy().Ended(now):
		c.State = "ended"
	case g.Pending() && !g.InviteExpires.IsZero() && !now.Before(g.InviteExpires):
		c.State = "ended"
	case g.Pending():
		c.State = "waiting"
	}
	for _, n := range consent.NeverNames {
		if slices.Contains(g.DenyLabels, consent.NeverKinds[n]) {
			c.Never = append(c.Never, n)
		}
	}
	if len(g.Kinds) > 0 {
		for _, k := range access.KindNames {
			if types := access.DataKinds[k]; len(types) > 0 && slices.Contains(g.Kinds, types[0]) {
				c.Kinds = append(c.Kinds, k)
			}
		}
	}
	return c
}

// inviteForm is the invitation form's state.
type inviteForm struct {
	*form
	Kinds []string // every kind of data that can be shared
	Never []string // the sensitive kinds that can be kept back
}

// showInvite shows the form to invite a caregiver: the patient's own
// record only, after a recent second factor.
func (s *Server) showInvite(w http.ResponseWriter, r *http.Request) error {
	u := s.ownRecordStepUp(w, r)
	if u == nil {
		return nil
	}
	f := newForm()
	f.Values["preset"] = "medications-visits"
	f.Values["until"] = s.now().AddDate(1, 0, 0).Format("2006-01-02")
	return s.showInviteForm(w, r, f, http.StatusOK)
}

func (s *Server) showInviteForm(w http.ResponseWriter, r *http.Request, f *form, status int) error {
	p := s.newPage(w, r, "invite.title")
	p.Status = status
	p.Data = inviteForm{form: f, Kinds: access.KindNames, Never: consent.NeverNames}
	return s.render(w, r, "sharing_invite", p)
}

// ownRecordStepUp lets through a patient acting for their own record
// with a recent second factor (granting access is a security setting:
// no caregiver may do it).
func (s *Server) ownRecordStepUp(w http.ResponseWriter, r *http.Request) *signedIn {
	if f := r.FormValue("for"); f != "" {
		user := ""
		if u := currentUser(r.Context()); u != nil {
			user = "Person/" + u.account.ID
		}
		s.refuseCaregiver(w, r, user, f)
		return nil
	}
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil {
		return nil
	}
	if u.account.PatientID == "" || s.opts.Grants == nil {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "This account has no record of its own to share."))
		return nil
	}
	return u
}

// submitInvite records the invitation and mails it; bad input is shown
// on the form, and nothing is written.
func (s *Server) submitInvite(w http.ResponseWriter, r *http.Request) error {
	u := s.ownRecordStepUp(w, r)
	if u == nil {
		return nil
	}
	f := newForm()
	for _, k := range []string{"email", "preset", "until"} {
		f.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	kinds, never := r.PostForm["kind"], r.PostForm["never"]
	for _, k := range kinds {
		f.Extra["kind-"+k] = true
	}
	for _, k := range never {
		f.Extra["never-"+k] = true
	}
	if f.Values["email"] == "" {
		f.Errors["email"] = "invite.email.missing"
	}
	day, err := time.ParseInLocation("2006-01-02", f.Values["until"], time.UTC)
	if err != nil {
		f.Errors["until"] = "invite.until.invalid"
	}
	if len(f.Errors) > 0 {
		return s.showInviteForm(w, r, f, http.StatusUnprocessableEntity)
	}
	ctx := r.Context()
	n := consent.NewGrant{Patient: u.account.PatientID, Email: f.Values["email"], Preset: f.Values["preset"], Kinds: kinds, Never: never,
		Until: day.AddDate(0, 0, 1), By: "Person/" + u.account.ID, Address: clientAddr(r), Invite: true, SelfEmail: u.account.Email}
	if _, _, err := n.Check(s.now()); err == nil {
		// The grant keeps the patient's name and birth date as the record
		// gives them (the caregiver's switcher; the age policy).
		rec, err := s.opts.Clinical.Read(ctx, s.ownRequest(u, r), "Patient", u.account.PatientID)
		if err != nil {
			return err
		}
		n.PatientName, n.PatientBirth = views.PatientFacts(rec)
	}
	_, err = s.opts.Grants.Grant(ctx, n)
	if err == nil {
		s.opts.Auth.Notice(ctx, u.account, "sharing-invited") // no PHI: who and whose are not named
	}
	if apperr.CodeOf(err) == apperr.Invalid {
		f.Errors[""] = "invite.invalid"
		f.Extra["Problem"] = apperr.MessageOf(err)
		return s.showInviteForm(w, r, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/sharing?done=invited")
}

// submitRevokeCaregiver ends a caregiver's access to the patient's own
// record at once.
func (s *Server) submitRevokeCaregiver(w http.ResponseWriter, r *http.Request) error {
	u := s.ownRecordStepUp(w, r)
	if u == nil {
		return nil
	}
	g, err := s.opts.Grants.Revoke(r.Context(), consent.Revocation{ID: r.PostFormValue("grant"), Patient: u.account.PatientID,
		By: "Person/" + u.account.ID, Address: clientAddr(r)})
	if err != nil {
		return err
	}
	if g.Account != "" {
		if a, err := s.opts.Auth.Store.AccountByID(r.Context(), g.Account); err == nil {
			s.opts.Auth.Notice(r.Context(), a, "sharing-ended")
		}
	}
	return redirect(w, r, "/sharing?done=revoked")
}

// submitLeave gives up the person's own caregiver access to a record.
func (s *Server) submitLeave(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if s.opts.Grants == nil {
		return apperr.New(apperr.NotFound, "sharing is not available")
	}
	g, err := s.opts.Grants.Revoke(r.Context(), consent.Revocation{ID: r.PostFormValue("grant"), Caregiver: u.account.ID,
		By: "Person/" + u.account.ID, Address: clientAddr(r)})
	if err != nil {
		return err
	}
	if a, err := s.opts.Auth.Store.AccountForPatient(r.Context(), g.Patient); err == nil {
		s.opts.Auth.Notice(r.Context(), a, "sharing-given-up")
	}
	return redirect(w, r, "/sharing?done=left")
}
