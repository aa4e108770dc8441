package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/consent"
	"carefront/internal/oauth"
	"carefront/internal/session"
)

// SMART apps: the authorization screen a person answers when an app asks
// for their record (/oauth/consent), and the connected apps page where
// they see and disconnect them (/sharing/apps). What a scope grants and
// how it narrows is package oauth's; who may share what, package
// consent's and access's.

// Apps is the SMART on FHIR side of carefront, as the web layer serves it.
type Apps struct {
	// OAuth serves the authorization server's endpoints (/oauth/... and
	// /.well-known/openid-configuration); FHIR serves /fhir/R4/.
	OAuth, FHIR http.Handler
	Flow        *oauth.Flow
	Clients     *oauth.Clients
	// Callback is where an approving browser goes on to get its code
	// (oauth.Server.AuthCallback).
	Callback func(requestID, ticket string) string
	// TokenLimiter bounds token requests per app and client address.
	TokenLimiter Limiter
	// FHIRBase is the FHIR API's URL, the iss of a launch.
	FHIRBase string
	// Server checks RP-initiated logout requests and answers
	// registrations.
	Server *oauth.Server
	// Registration serves dynamic client registration (RFC 7591) at
	// oauth.PathRegister, each address limited by RegisterLimiter.
	Registration    bool
	RegisterLimiter Limiter
}

// authorizeChoice is one kind of data on the authorization screen.
type authorizeChoice struct {
	oauth.Choice
	Checked bool
}

// authorizePage is the authorization screen's state.
type authorizePage struct {
	Request *oauth.Request
	App     *oauth.Client
	// Host is where the app sends the person back to.
	Host string
	// Records, when the person must first choose whose record the app
	// may see.
	Records []recordChoice
	// For is the chosen record; Name its person's name (a caregiver's).
	For, Name string
	Choices   []authorizeChoice
	// Identity says the app asks who the person is (openid, fhirUser).
	Identity bool
	// Lasts is how long access lasts: offline, online or once.
	Lasts     string
	AccessMin int
	Problem   string
}

// appRecord is the record an app is being connected to and on what
// terms the person acts for it.
type appRecord struct {
	patient  string
	name     string
	fhirUser string
	grant    *consent.Grant // the caregiver's grant; nil for their own record
}

func (a appRecord) covers(typ string) bool {
	if a.grant == nil {
		return true
	}
	p := a.grant.Proxy()
	return p.Covers(typ)
}

// authorizeRequest loads the request an authorization screen answers and
// lets through only a person signed in with both factors recently
// (connecting an app is a security setting). It answers and returns nil
// when the request cannot go on.
func (s *Server) authorizeRequest(w http.ResponseWriter, r *http.Request) (*signedIn, *oauth.Request, *oauth.Client) {
	ctx := r.Context()
	req, err := s.opts.Apps.Flow.Request(ctx, r.FormValue("request"))
	if err == nil && req.GrantID != "" {
		err = oauth.ErrNoRequest
	}
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil, nil
	}
	app, err := s.opts.Apps.Clients.Get(ctx, req.ClientID)
	if err == nil && !app.Active() {
		err = oauth.ErrUnknownClient
	}
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil, nil
	}
	// The answer sends the browser on to the app: the page's form-action
	// (this page's, or a step-up form's in its place) names the app's
	// redirect origin, which browsers check along the redirects that
	// follow the form.
	allowFormTarget(w, req.RedirectURI)
	back := r.URL.Path + "?" + url.Values{"request": {req.ID}}.Encode()
	switch u := currentUser(ctx); {
	case u == nil:
		http.Redirect(w, r, "/signin?"+url.Values{"return": {back}}.Encode(), http.StatusSeeOther)
		return nil, nil, nil
	case u.session.Level != session.LevelMFA && !u.account.EmailVerified.IsZero():
		http.Redirect(w, r, "/signin/verify?"+url.Values{"return": {back}}.Encode(), http.StatusSeeOther)
		return nil, nil, nil
	}
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil {
		return nil, nil, nil
	}
	return u, req, app
}

// appRecords are the records a person may connect an app to: their own,
// and those they hold caregiver access to.
func (s *Server) appRecords(r *http.Request, u *signedIn) ([]recordChoice, error) {
	var out []recordChoice
	if u.account.PatientID != "" {
		out = append(out, recordChoice{For: u.account.PatientID, Self: true})
	}
	held, err := s.heldRecords(r, u, s.now())
	return append(out, held...), err
}

// recordFor is the record chosen for the app, with the caregiver grant
// the person holds it by; a record they may not act for is Forbidden.
func (s *Server) recordFor(r *http.Request, u *signedIn, forID string) (appRecord, error) {
	if forID == u.account.PatientID && forID != "" {
		return appRecord{patient: forID, fhirUser: "Patient/" + forID}, nil
	}
	if s.opts.Grants != nil && forID != "" {
		gs, err := s.opts.Grants.ForCaregiver(r.Context(), u.account.ID)
		if err != nil {
			return appRecord{}, err
		}
		now := s.now()
		for i := range gs {
			g := &gs[i]
			if g.Patient == forID && g.Active(now) && !g.Pending() && !g.Proxy().Ended(now) {
				return appRecord{patient: forID, name: g.PatientName, fhirUser: consent.RelatedPerson(g.ID), grant: g}, nil
			}
		}
	}
	return appRecord{}, apperr.New(apperr.Forbidden, "You cannot connect an app to that record.")
}

// showAuthorize is the authorization screen.
func (s *Server) showAuthorize(w http.ResponseWriter, r *http.Request) error {
	u, req, app := s.authorizeRequest(w, r)
	if u == nil {
		return nil
	}
	d := authorizePage{Request: req, App: app, Host: redirectHost(req.RedirectURI)}
	forID := r.FormValue("for")
	launch, err := s.opts.Apps.Flow.RequestLaunch(r.Context(), req)
	if err != nil {
		return err
	}
	if launch != nil {
		// Opened from the portal: the record it was opened for, by the
		// person who opened it.
		if launch.Account != u.account.ID {
			return apperr.New(apperr.Forbidden, "This app was opened by someone else. Open it again from your own account.")
		}
		forID = launch.Patient
	}
	if forID == "" {
		recs, err := s.appRecords(r, u)
		if err != nil {
			return err
		}
		switch len(recs) {
		case 0:
			return apperr.New(apperr.Forbidden, "This account has no record an app could connect to.")
		case 1:
			forID = recs[0].For
		default:
			d.Records = recs
			return s.renderAuthorize(w, r, d, http.StatusOK)
		}
	}
	rec, err := s.recordFor(r, u, forID)
	if err != nil {
		return err
	}
	d.For, d.Name = rec.patient, rec.name
	for _, c := range oauth.Choices(req.Scopes, rec.covers) {
		d.Choices = append(d.Choices, authorizeChoice{Choice: c, Checked: c.Allowed})
	}
	return s.renderAuthorize(w, r, d, http.StatusOK)
}

func (s *Server) renderAuthorize(w http.ResponseWriter, r *http.Request, d authorizePage, status int) error {
	for _, sc := range d.Request.Scopes {
		switch sc.Plain {
		case oauth.ScopeOpenID, oauth.ScopeFHIRUser, oauth.ScopeProfile:
			d.Identity = true
		case oauth.ScopeOffline:
			d.Lasts = "offline"
		case oauth.ScopeOnline:
			if d.Lasts == "" {
				d.Lasts = "online"
			}
		}
	}
	if d.Lasts == "" {
		d.Lasts = "once"
	}
	d.AccessMin = int(s.opts.Apps.Flow.AccessTTL.Minutes())
	if d.AccessMin == 0 {
		d.AccessMin = int(oauth.DefaultAccessTTL.Minutes())
	}
	p := s.newPage(w, r, "authorize.title")
	p.Status = status
	p.Data = d
	return s.render(w, r, "app_authorize", p)
}

// submitAuthorize records the person's answer and sends them back to the
// app: with a code (through the authorization server's callback) when
// they allow it, with access_denied when they deny it.
func (s *Server) submitAuthorize(w http.ResponseWriter, r *http.Request) error {
	u, req, _ := s.authorizeRequest(w, r)
	if u == nil {
		return nil
	}
	ctx := r.Context()
	rec, err := s.recordFor(r, u, r.PostFormValue("for"))
	if err != nil {
		return err
	}
	if r.PostFormValue("decision") != "allow" {
		denied, err := s.opts.Apps.Flow.Deny(ctx, req.ID, u.account.ID, rec.patient, clientAddr(r))
		if err != nil {
			return err
		}
		q := url.Values{"error": {"access_denied"}, "error_description": {"the person did not allow access"}, "iss": {strings.TrimSuffix(s.opts.BaseURL, "/")}}
		if denied.State != "" {
			q.Set("state", denied.State)
		}
		sep := "?"
		if strings.Contains(denied.RedirectURI, "?") {
			sep = "&"
		}
		http.Redirect(w, r, denied.RedirectURI+sep+q.Encode(), http.StatusSeeOther)
		return nil
	}
	kept := r.PostForm["kind"]
	scopes := oauth.Narrow(req.Scopes, kept, rec.covers)
	_, ticket, err := s.opts.Apps.Flow.Approve(ctx, req.ID, oauth.Approval{
		Account: u.account.ID, Patient: rec.patient, Caregiver: rec.grant != nil, FHIRUser: rec.fhirUser,
		Scopes: scopes, AuthTime: u.session.MFAAt, AMR: []string{"mfa"}, Address: clientAddr(r),
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, s.opts.Apps.Callback(req.ID, ticket), http.StatusSeeOther)
	return nil
}

// redirectHost is the host an app sends the person back to, as the
// screen names it (a native app's scheme when it has no host).
func redirectHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.Host != "" {
		return u.Hostname()
	}
	return u.Scheme
}

// allowFormTarget lets this response's forms lead on to uri's origin
// (the content security policy's form-action); nothing when uri is
// empty or cannot be written as a source safely.
func allowFormTarget(w http.ResponseWriter, uri string) {
	if o := formOrigin(uri); o != "" {
		h := w.Header()
		h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"), "form-action 'self'", "form-action 'self' "+o, 1))
	}
}

// formOrigin is the CSP source of a redirect URI's origin ("https://app.example",
// "com.example.app:"), or "" when it cannot be written as one safely.
func formOrigin(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return ""
	}
	o := u.Scheme + ":"
	if u.Host != "" {
		o = u.Scheme + "://" + u.Host
	}
	if strings.IndexFunc(o, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".:/-+[]", c))
	}) >= 0 {
		return ""
	}
	return o
}

// appCard is one app grant as the connected apps page shows it.
type appCard struct {
	oauth.Grant
	App      string
	Reviewed bool
	Kinds    []string // the kinds of data granted, by oauth.Kinds names
	By       string   // "you", or "caregiver"
	State    string   // active, ended or disconnected
}

type appsPage struct {
	Active, Earlier []appCard
	Notice          string
	// Offered are the apps the clinic registered to be opened from the
	// portal (they have a launch URL).
	Offered []oauth.Client
}

// showApps lists the apps connected to the person's own record.
func (s *Server) showApps(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if s.termsGate(w, r, u) {
		return nil
	}
	if u.account.PatientID == "" {
		return apperr.New(apperr.NotFound, "This account has no record of its own.")
	}
	ctx := r.Context()
	d := appsPage{}
	if r.URL.Query().Get("done") == "disconnected" {
		d.Notice = "apps.done.disconnected"
	}
	cards, err := s.appCards(r, u.account.PatientID)
	if err != nil {
		return err
	}
	for _, c := range cards {
		if c.State == "active" {
			d.Active = append(d.Active, c)
		} else {
			d.Earlier = append(d.Earlier, c)
		}
	}
	all, err := s.opts.Apps.Clients.List(ctx)
	if err != nil {
		return err
	}
	var origins []string
	for _, c := range all {
		if c.LaunchURL != "" && c.Active() && c.Reviewed {
			d.Offered = append(d.Offered, c)
			if o := formOrigin(c.LaunchURL); o != "" && !slices.Contains(origins, o) {
				origins = append(origins, o)
			}
		}
	}
	if len(origins) > 0 {
		// Open goes on to the app's launch URL.
		h := w.Header()
		h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"), "form-action 'self'", "form-action 'self' "+strings.Join(origins, " "), 1))
	}
	p := s.newPage(w, r, "apps.title")
	p.Data = d
	return s.render(w, r, "apps", p)
}

// submitLaunch opens an app the clinic offers for the person's own
// record: the browser goes to the app's launch URL with a launch value
// that names the record for the app's authorization request.
func (s *Server) submitLaunch(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if u.account.PatientID == "" || r.FormValue("for") != "" {
		return apperr.New(apperr.Forbidden, "Apps open from here for your own record only.")
	}
	ctx := r.Context()
	c, err := s.opts.Apps.Clients.Get(ctx, r.PostFormValue("client"))
	if err != nil {
		return err
	}
	if !c.Reviewed {
		return apperr.New(apperr.NotFound, "this app cannot be opened from the portal")
	}
	to, err := s.opts.Apps.Flow.CreateLaunch(ctx, c, u.account.ID, u.account.PatientID, s.opts.Apps.FHIRBase)
	if err != nil {
		return err
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// appCards describes every app grant of a patient's record, newest
// first.
func (s *Server) appCards(r *http.Request, patient string) ([]appCard, error) {
	ctx := r.Context()
	gs, err := s.opts.Apps.Flow.Grants(ctx, patient)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []appCard
	names := map[string]*oauth.Client{}
	for _, g := range gs {
		c, ok := names[g.ClientID]
		if !ok {
			if c, err = s.opts.Apps.Clients.Get(ctx, g.ClientID); err != nil {
				return nil, err
			}
			names[g.ClientID] = c
		}
		card := appCard{Grant: g, App: c.Name, Reviewed: c.Reviewed, By: "you", State: "active", Kinds: grantedKinds(g.Scopes)}
		if g.Caregiver {
			card.By = "caregiver"
		}
		switch {
		case !g.Revoked.IsZero():
			card.State = "disconnected"
		case !g.Active(now) || !c.Active():
			card.State = "ended"
		}
		out = append(out, card)
	}
	return out, nil
}

// grantedKinds names the kinds of data scopes grant, in the screen's order.
func grantedKinds(scopes []oauth.Scope) []string {
	var out []string
	for _, c := range oauth.Choices(scopes, nil) {
		out = append(out, c.Kind)
	}
	return slices.Clip(out)
}

// submitDisconnect ends an app's access to the person's own record: its
// tokens fail at their next use.
func (s *Server) submitDisconnect(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if u.account.PatientID == "" || r.FormValue("for") != "" {
		return apperr.New(apperr.Forbidden, "Only the person whose record it is can disconnect its apps here.")
	}
	err := s.opts.Apps.Flow.RevokeGrant(r.Context(), r.PostFormValue("grant"), u.account.PatientID, "Person/"+u.account.ID)
	if err != nil {
		return err
	}
	return redirect(w, r, "/sharing/apps?done=disconnected")
}

// logoutPage is the confirmation an app's logout request shows.
type logoutPage struct {
	App      string
	Form     url.Values
	Redirect string
}

// showLogout answers an app's RP-initiated logout: signed out, the
// person goes straight on; signed in, they confirm (a page another site
// links to must not end a session by itself).
func (s *Server) showLogout(w http.ResponseWriter, r *http.Request) error {
	lo, err := s.opts.Apps.Server.ParseLogout(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	if currentUser(r.Context()) == nil {
		return redirectOut(w, r, lo.Redirect)
	}
	d := logoutPage{Form: url.Values{}, Redirect: lo.Redirect}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if v := r.URL.Query().Get(k); v != "" {
			d.Form.Set(k, v)
		}
	}
	if lo.ClientID != "" {
		d.App = s.opts.Apps.Clients.Name(r.Context(), lo.ClientID)
	}
	allowFormTarget(w, lo.Redirect)
	p := s.newPage(w, r, "logout.title")
	p.Data = d
	return s.render(w, r, "logout", p)
}

// submitLogout ends the session and goes on where the app asked.
func (s *Server) submitLogout(w http.ResponseWriter, r *http.Request) error {
	lo, err := s.opts.Apps.Server.ParseLogout(r.Context(), r.PostForm)
	if err != nil {
		return err
	}
	if err := s.endSession(w, r); err != nil {
		return err
	}
	return redirectOut(w, r, lo.Redirect)
}

// redirectOut sends the browser to an app's validated address, or home.
func redirectOut(w http.ResponseWriter, r *http.Request, to string) error {
	if to == "" {
		to = "/"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// limitRegister bounds dynamic registrations per client address.
func (s *Server) limitRegister(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := s.opts.Apps.RegisterLimiter; l != nil {
			if ok, wait := l.Allow(r.Context(), clientAddr(r)); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.999))))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"error":"slow_down","error_description":"too many registrations from this address; try again later"}`))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitTokens bounds token requests per app and client address: a
// refresh storm from one app, or guesses at one app's codes, cannot
// crowd out the others.
func (s *Server) limitTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l := s.opts.Apps.TokenLimiter; l != nil && r.Method == http.MethodPost {
			// The app the request says it is, as the token endpoint will
			// read it; any id that is not a registered app's shares one
			// budget per address, so made-up ids buy no fresh budget.
			client := r.PostFormValue("client_id")
			if id, _, ok := r.BasicAuth(); ok {
				if u, err := url.QueryUnescape(id); err == nil {
					client = u
				}
			}
			if a := r.PostFormValue("client_assertion"); client == "" && a != "" {
				client = oauth.AssertionIssuer(a)
			}
			if c, err := s.opts.Apps.Clients.Get(r.Context(), client); err != nil || c == nil {
				client = "unregistered"
			}
			if ok, wait := l.Allow(r.Context(), client+"|"+clientAddr(r)); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.999))))
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"error":"slow_down","error_description":"too many token requests; try again shortly"}`))
				return
			}
		}
		s.opts.Apps.Clients.CORS("POST", next).ServeHTTP(w, r)
	})
}
