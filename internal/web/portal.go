package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
	"carefront/internal/identity"
	"carefront/internal/session"
	"carefront/internal/telemetry"
	"carefront/internal/views"
)

// The signed-in portal: what every page and view of a person's own record
// shares. Pages render what the views package builds; they read nothing
// themselves.

// navItem is one entry of the record navigation.
type navItem struct {
	Path, Label string
	Current     bool
	// Type is the kind of data (FHIR type) the page is about; a caregiver
	// whose grant does not cover it does not see the entry.
	Type string
}

// navPaths are the record pages, in the order the navigation lists them.
var navPaths = []navItem{
	{Path: "/", Label: "nav.home"}, {Path: "/results", Label: "nav.results", Type: "Observation"},
	{Path: "/visits", Label: "nav.visits", Type: "Encounter"}, {Path: "/medications", Label: "nav.medications", Type: "MedicationRequest"},
	{Path: "/summary", Label: "nav.summary"}, {Path: "/documents", Label: "nav.documents", Type: "DocumentReference"},
	{Path: "/timeline", Label: "nav.timeline"}, {Path: "/messages", Label: "nav.messages", Type: "Communication"},
}

// nav marks the page the request is on (or under).
func nav(path string) []navItem {
	out := slices.Clone(navPaths)
	for i, n := range out {
		out[i].Current = path == n.Path || (n.Path != "/" && strings.HasPrefix(path, n.Path+"/"))
	}
	return out
}

// isAPI reports whether the request is for the JSON view API, which
// answers with JSON, never a redirect.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

var errSignIn = apperr.New(apperr.Unauthorized, "Sign in to see your record.")

// errNoAccess answers a caregiver whose access to a record has ended, or
// who never had it, on the view API; pages send them home, which says so.
var errNoAccess = apperr.New(apperr.Forbidden, "You no longer have access to this record.")

// viewing is whose record a request is for: the person's own, or one they
// hold caregiver access to; with the other records they may switch to.
type viewing struct {
	// For is the patient's id, as links and forms name it (for=ID).
	For string
	// Name is the patient's name; empty for the person's own record.
	Name string
	Self bool
	// Staff says a clinician views the record for the patient's care.
	Staff bool
	// Others are the other records the person may switch to.
	Others []recordChoice

	proxy  *access.Proxy  // the caregiver's grant in force
	policy *access.Policy // the patient's policy it was read from
	at     time.Time      // when the request is decided
}

// recordChoice is one record in the switcher.
type recordChoice struct {
	For, Name string
	Self      bool
}

// patient lets through a person signed in with both factors, for their
// own record or, with for=ID, a record they hold caregiver access to, and
// returns the request the views decide for. A page sends anyone else
// where they can go on: to sign in, to finish signing in, or home (staff,
// people with no record of their own, and caregivers whose access ended,
// whose home then says so); a view answers 401 or 403 JSON. It returns
// nil when it answered.
func (s *Server) patient(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	u := currentUser(r.Context())
	if isAPI(r) {
		switch {
		case u == nil || u.session.Level != session.LevelMFA || u.account.EmailVerified.IsZero():
			s.renderError(w, r, errSignIn)
			return nil, nil
		case u.account.Kind != identity.Person && r.FormValue("for") == "":
			s.renderError(w, r, apperr.New(apperr.Forbidden, "This account has no record of its own."))
			return nil, nil
		}
	} else {
		if u = s.requireMFA(w, r); u == nil {
			return nil, nil
		}
		if u.account.Kind != identity.Person && r.FormValue("for") == "" {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return nil, nil
		}
	}
	if s.termsGate(w, r, u) {
		return nil, nil
	}
	req := &clinical.Request{Principal: principal(u, r), RequestID: telemetry.RequestID(r.Context())}
	forID := r.FormValue("for")
	if forID != "" && !fhir.ValidID(forID) {
		s.renderError(w, r, apperr.New(apperr.Invalid, "for must name a patient record"))
		return nil, nil
	}
	if u.account.Kind == identity.Staff {
		if !s.staffFor(w, r, u, req, forID) {
			return nil, nil
		}
		return u, req
	}
	v, err := s.viewingFor(r, u, forID)
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil
	}
	if v == nil || (!v.Self && v.proxy == nil) {
		if isAPI(r) {
			s.renderError(w, r, errNoAccess)
		} else if v == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther) // no record of their own: home lists those they hold
		} else {
			http.Redirect(w, r, "/?ended="+url.QueryEscape(forID), http.StatusSeeOther)
		}
		return nil, nil
	}
	u.viewing = v
	if !v.Self {
		p := &req.Principal
		p.Patient, p.Caregiver, p.Proxy, p.Policy, p.At = v.For, true, v.proxy, v.policy, v.at
	}
	return u, req
}

// staffFor lets a clinician through to the record of a patient they have
// a care relationship with, and names the patient on the page; anyone
// else on the staff, or a clinician without one, is refused (403), and
// the refusal audited. It reports whether the request goes on.
func (s *Server) staffFor(w http.ResponseWriter, r *http.Request, u *signedIn, req *clinical.Request, forID string) bool {
	ctx := r.Context()
	p := &req.Principal
	p.Patient, p.At = forID, s.now()
	if s.opts.Clinical == nil {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Staff cannot open patient records here."))
		return false
	}
	reason := ""
	switch {
	case p.Role != access.RoleClinician:
		reason = access.ReasonStaffRole
	case p.Practitioner == "":
		reason = access.ReasonNoCare
	default:
		ok, err := s.opts.Clinical.CaresFor(ctx, p.Practitioner, forID)
		if err != nil {
			s.renderError(w, r, err)
			return false
		}
		p.CareRelationship = ok
		if !ok {
			reason = access.ReasonNoCare
		}
	}
	if reason != "" {
		if err := s.opts.Clinical.Refused(ctx, *req, reason); err != nil {
			s.renderError(w, r, err)
			return false
		}
		msg := "You have no care relationship with this patient, so their record is not open to you."
		if reason == access.ReasonStaffRole {
			msg = "Your role does not include reading patients' records."
		}
		s.renderError(w, r, apperr.New(apperr.Forbidden, "%s", msg))
		return false
	}
	v := &viewing{For: forID, Staff: true, at: p.At}
	if !isAPI(r) {
		if rec, err := s.opts.Clinical.Read(ctx, *req, "Patient", forID); err == nil {
			v.Name, _ = views.PatientFacts(rec)
		}
	}
	u.viewing = v
	return true
}

// viewingFor resolves whose record a request is for. It returns nil when
// the person has no record of their own and named none; a viewing
// without a proxy when they named a record they hold no access to (now),
// which is audited as refused.
func (s *Server) viewingFor(r *http.Request, u *signedIn, forID string) (*viewing, error) {
	ctx := r.Context()
	own := u.account.PatientID
	now := s.now()
	v := &viewing{For: forID, at: now}
	if forID == "" || forID == own {
		if own == "" {
			return nil, nil
		}
		v.For, v.Self = own, true
	}
	held, err := s.heldRecords(r, u, now)
	if err != nil {
		return nil, err
	}
	if !v.Self && own != "" {
		v.Others = append(v.Others, recordChoice{For: own, Self: true})
	}
	for _, c := range held {
		if c.For == v.For {
			v.Name = c.Name
		} else {
			v.Others = append(v.Others, c)
		}
	}
	if v.Self {
		return v, nil
	}
	if s.opts.Policies == nil {
		return v, nil
	}
	pol, err := s.opts.Policies.Policy(ctx, forID)
	if err != nil {
		return nil, err
	}
	proxy := pol.ProxyFor("Person/" + u.account.ID)
	if proxy == nil || proxy.Ended(now) {
		reason := access.ReasonProxyNoGrant
		if proxy != nil {
			reason = access.Decide(ctx, access.Principal{Patient: forID, Caregiver: true, Proxy: proxy, At: now}, access.Read, access.Target{Type: "Patient", Patients: []string{forID}}).Reason
		}
		req := clinical.Request{Principal: principal(u, r), RequestID: telemetry.RequestID(ctx)}
		req.Principal.Patient, req.Principal.Caregiver = forID, true
		if s.opts.Clinical == nil {
			return v, nil
		}
		return v, s.opts.Clinical.Refused(ctx, req, reason)
	}
	v.proxy, v.policy = proxy, pol
	return v, nil
}

// heldRecords are the records a person holds caregiver access to at now,
// one per patient.
func (s *Server) heldRecords(r *http.Request, u *signedIn, now time.Time) ([]recordChoice, error) {
	if s.opts.Grants == nil {
		return nil, nil
	}
	grants, err := s.opts.Grants.ForCaregiver(r.Context(), u.account.ID)
	if err != nil {
		return nil, err
	}
	var out []recordChoice
	for _, g := range grants {
		if g.Patient == u.account.PatientID || !g.Active(now) || g.Proxy().Ended(now) ||
			slices.ContainsFunc(out, func(c recordChoice) bool { return c.For == g.Patient }) {
			continue
		}
		out = append(out, recordChoice{For: g.Patient, Name: g.PatientName})
	}
	return out, nil
}

// now is the time requests are decided at: the gateway's clock.
func (s *Server) now() time.Time {
	if s.opts.Clinical != nil {
		return s.opts.Clinical.Clock()
	}
	return time.Now()
}

// recordPage starts a page of the record the request is for, with its
// navigation (only what the person may see of it) and, for a person who
// holds caregiver access, whose record it is and the switcher.
func (s *Server) recordPage(w http.ResponseWriter, r *http.Request, titleID string, data any) page {
	p := s.newPage(w, r, titleID)
	p.Data = data
	if u := currentUser(r.Context()); u != nil && u.viewing != nil && (!u.viewing.Self || len(u.viewing.Others) > 0) {
		p.Viewing = u.viewing
	}
	for _, n := range nav(r.URL.Path) {
		if n.Path == "/messages" && s.opts.Messages == nil {
			continue
		}
		if n.Type == "" || p.Shares(n.Type) {
			n.Path = p.R(n.Path)
			p.Nav = append(p.Nav, n)
		}
	}
	return p
}

// selfOnly refuses a caregiver a page or action only the patient may take
// (their security and privacy settings, releasing held results); it
// reports whether it answered.
func (s *Server) selfOnly(w http.ResponseWriter, r *http.Request, req *clinical.Request) bool {
	if !req.Principal.Caregiver && req.Principal.Role == "" {
		return false
	}
	s.refuseCaregiver(w, r, req.Principal.User, req.Principal.Patient)
	return true
}

// refuseCaregiver answers a caregiver who tried to change what only the
// patient may (their settings, who sees their record), and audits it.
func (s *Server) refuseCaregiver(w http.ResponseWriter, r *http.Request, user, patient string) {
	var err error = apperr.New(apperr.Forbidden, "Only the person whose record this is can change this.")
	if s.opts.Auth != nil && s.opts.Auth.Audit != nil {
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.MinorFailure, Reason: "caregiver-not-permitted", User: user, Address: clientAddr(r)}
		if fhir.ValidID(patient) {
			rec.Patient, rec.OnBehalf = "Patient/"+patient, "Patient/"+patient
		}
		if aerr := s.opts.Auth.Audit.Append(r.Context(), rec); aerr != nil {
			err = aerr
		}
	}
	s.renderError(w, r, err)
}

// shares refuses a page of a kind of data the caregiver's grant does not
// cover; it reports whether it answered.
func (s *Server) shares(w http.ResponseWriter, r *http.Request, req *clinical.Request, typ string) bool {
	if p := req.Principal.Proxy; p == nil || p.Covers(typ) {
		return false
	}
	if s.opts.Clinical != nil {
		if err := s.opts.Clinical.Refused(r.Context(), *req, access.ReasonProxyKind); err != nil {
			s.renderError(w, r, err)
			return true
		}
	}
	s.renderError(w, r, apperr.New(apperr.Forbidden, "This part of the record is not shared with you."))
	return true
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

// endedNotice tells a caregiver their access to a record has ended.
type endedNotice struct {
	Name string // whose record; "" when they never held a grant for it
}

// ownRequest is a request for the person's own record.
func (s *Server) ownRequest(u *signedIn, r *http.Request) clinical.Request {
	return clinical.Request{Principal: principal(u, r), RequestID: telemetry.RequestID(r.Context())}
}
