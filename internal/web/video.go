package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
	"carefront/internal/identity"
	"carefront/internal/telehealth"
	"carefront/internal/telemetry"
	"carefront/internal/views"
)

// Video runs video visits (package telehealth) for the portal.
type Video struct {
	Rooms    *telehealth.Rooms
	Consents *telehealth.Consents
	// Records writes a visit back and reads it for the After-your-visit
	// card; nil offers neither.
	Records *telehealth.Records
	Window  telehealth.Window
	// ICE lists the STUN and TURN servers a participant's browser may
	// use, with credentials for user; nil offers none (the browsers then
	// connect directly, as on one network).
	ICE func(user string) []telehealth.ICEServer
	// Provider names the media engine for the page: "" or "embedded",
	// or "livekit".
	Provider string
	// Guests invites people without an account to a visit; nil offers
	// none.
	Guests *telehealth.Guests
	// ConnectTo are the origins the visit page may connect to besides
	// its own (the LiveKit server's wss:// and https://).
	ConnectTo []string
}

// videoPage is the video visit page in one of its states.
type videoPage struct {
	Visit *appointments.Appointment
	// State: ready, early, over, ended, cancelled, not-video, not-on-visit,
	// no-visits, consent.
	State string
	Opens time.Time
	Role  string
	// Config is what visit.js needs, as JSON: the WebSocket path, the
	// token, the ICE servers and the role.
	Config   string
	Phone    string
	Zone     string
	Provider string
	// Guest is the invite-a-guest form (with its errors); GuestSent says
	// an invitation just went out.
	Guest     *form
	GuestSent bool
	Invite    bool // guests can be invited from this page
	CheckedIn bool // the patient checked in for it (no reminder then)
	Consent   bool // the consent was just recorded
}

// videoJoin resolves who opens a video visit and whether they may join:
// the patient, a caregiver whose grant includes visits, or the clinician
// on the appointment. It answers the request itself (reporting nil) when
// the record or visit cannot be shown at all; otherwise it returns the
// visit and the page's state ("ready" when they may join now).
func (s *Server) videoJoin(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request, *videoPage, *telehealth.Arrival) {
	if s.opts.Video == nil || s.opts.Appointments == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "Video visits are not offered here."))
		return nil, nil, nil, nil
	}
	u, req := s.patient(w, r)
	if req == nil {
		return nil, nil, nil, nil
	}
	ctx := r.Context()
	a, err := s.opts.Appointments.Get(ctx, s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil, nil, nil
	}
	vp := &videoPage{Visit: a, Zone: s.zoneName(), Phone: a.Phone}
	arr := &telehealth.Arrival{Appointment: a.ID, Patient: a.Patient, Participant: "Person/" + u.account.ID,
		Address: clientAddr(r), Session: sessionHash(u.token)}
	now := s.opts.Appointments.Clock()
	win := s.opts.Video.Window
	vp.Opens = win.Opens(a.Start).In(s.zone())
	switch {
	case u.account.Kind == identity.Staff:
		arr.Role, arr.Name, arr.UserName, arr.UserRole = telehealth.RoleClinician, u.account.DisplayName, u.account.DisplayName, u.account.StaffRole
		if u.account.PractitionerID == "" || u.account.PractitionerID != a.Clinician {
			vp.State = "not-on-visit"
		}
	case req.Principal.Caregiver:
		arr.Role, arr.OnBehalf = telehealth.RoleCaregiver, "Patient/"+a.Patient
		ok, err := s.opts.Clinical.MayWrite(ctx, *req, "Appointment")
		if err != nil {
			s.renderError(w, r, err)
			return nil, nil, nil, nil
		}
		if !ok {
			vp.State = "no-visits"
		}
		labels, err := s.caregiverLabels(ctx, a.Patient)
		if err != nil {
			s.renderError(w, r, err)
			return nil, nil, nil, nil
		}
		arr.Name = labels[u.account.ID]
	default:
		arr.Role = telehealth.RolePatient
		if rec, err := s.opts.Clinical.Read(ctx, *req, "Patient", a.Patient); err == nil {
			arr.Name, _ = views.PatientFacts(rec)
		}
	}
	if arr.Name == "" {
		arr.Name = arr.Role
	}
	vp.Role = arr.Role
	if vp.State == "" {
		ended, err := s.opts.Video.Rooms.Ended(ctx, a.ID)
		if err != nil {
			s.renderError(w, r, err)
			return nil, nil, nil, nil
		}
		switch {
		case !a.Video:
			vp.State = "not-video"
		case a.Status == "cancelled":
			vp.State = "cancelled"
		case !ended.IsZero():
			vp.State = "ended"
		case now.Before(win.Opens(a.Start)):
			vp.State = "early"
		case !win.Open(a.Start, a.End, now):
			vp.State = "over"
		}
	}
	if vp.State == "" && arr.Role != telehealth.RoleClinician {
		at, err := s.opts.Video.Consents.Agreed(ctx, a.Patient)
		if err != nil {
			s.renderError(w, r, err)
			return nil, nil, nil, nil
		}
		if at.IsZero() {
			vp.State = "consent"
		}
	}
	if vp.State == "" {
		vp.State = "ready"
	} else if vp.State != "early" && vp.State != "consent" {
		s.auditVideoRefusal(ctx, *arr, vp.State)
	}
	a.Start, a.End = a.Start.In(s.zone()), a.End.In(s.zone())
	return u, req, vp, arr
}

// auditVideoRefusal records a join refused before any connection.
func (s *Server) auditVideoRefusal(ctx context.Context, arr telehealth.Arrival, reason string) {
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{telehealth.SubtypeVideoVisit, telehealth.EventCoding(telehealth.EventRefused)},
		Action: audit.Execute, Outcome: audit.MinorFailure, Reason: "join-" + reason, User: arr.Participant, OnBehalf: arr.OnBehalf,
		Address: arr.Address, Session: arr.Session, Patient: "Patient/" + arr.Patient, Entities: []audit.Entity{{What: "Appointment/" + arr.Appointment}}}
	if err := s.opts.Video.Rooms.Audit.Append(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "audit video refusal", "err", err)
	}
}

func sessionHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// mediaAllowed lets the page use the camera and microphone, from the
// portal's own origin only; every other page keeps them off.
func mediaAllowed(w http.ResponseWriter) {
	w.Header().Set("Permissions-Policy", "accelerometer=(), camera=(self), geolocation=(), gyroscope=(), magnetometer=(), microphone=(self), payment=(), usb=(), display-capture=()")
}

// showVideo is the video visit page: the waiting room, then the visit.
func (s *Server) showVideo(w http.ResponseWriter, r *http.Request) error {
	_, _, vp, arr := s.videoJoin(w, r)
	if vp == nil {
		return nil
	}
	p := s.recordPage(w, r, "video.title", vp)
	if vp.State == "ready" {
		if err := s.readyVisit(w, r, vp, *arr, p.R("/visits/"+arr.Appointment+"/video/ws"), "/session/keepalive"); err != nil {
			return err
		}
	}
	switch vp.State {
	case "not-video", "not-on-visit", "no-visits":
		p.Status = http.StatusForbidden
		if vp.State == "not-video" {
			p.Status = http.StatusNotFound
		}
	case "ended", "over", "cancelled":
		p.Status = http.StatusGone
	}
	vp.Consent = r.FormValue("done") == "consent"
	vp.GuestSent = r.FormValue("done") == "guest"
	if s.opts.CheckIn != nil && vp.State == "ready" && vp.Role != telehealth.RoleClinician {
		at, err := s.opts.CheckIn.CheckedIn(r.Context(), []string{vp.Visit.ID})
		if err != nil {
			return err
		}
		vp.CheckedIn = !at[vp.Visit.ID].IsZero()
	}
	vp.Invite = s.opts.Video.Guests != nil && (vp.State == "ready" || vp.State == "early")
	return s.render(w, r, "video", p)
}

// submitVideoConsent records the patient's consent to video visits.
func (s *Server) submitVideoConsent(w http.ResponseWriter, r *http.Request) error {
	u, _, vp, arr := s.videoJoin(w, r)
	if vp == nil {
		return nil
	}
	if vp.State != "consent" {
		p := s.recordPage(w, r, "video.title", nil)
		return redirect(w, r, p.R("/visits/"+vp.Visit.ID+"/video"))
	}
	if r.FormValue("agree") != "yes" {
		p := s.recordPage(w, r, "video.title", vp)
		p.Status = http.StatusUnprocessableEntity
		vp.State = "consent-missing"
		return s.render(w, r, "video", p)
	}
	if err := s.opts.Video.Consents.Agree(r.Context(), arr.Patient, "Person/"+u.account.ID, clientAddr(r), s.opts.Appointments.Clock()); err != nil {
		return err
	}
	p := s.recordPage(w, r, "video.title", nil)
	return redirect(w, r, p.R("/visits/"+vp.Visit.ID+"/video?done=consent"))
}

// videoSocket is the visit's signalling connection: the same person and
// checks as the page, from the portal's own origin only; the first
// message must carry the visit token the page was given.
func (s *Server) videoSocket(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return apperr.New(apperr.Forbidden, "video visits connect from the portal's own pages only")
	}
	_, _, vp, arr := s.videoJoin(w, r)
	if vp == nil {
		return nil
	}
	if vp.State != "ready" {
		return apperr.New(apperr.Forbidden, "this visit cannot be joined now: %s", vp.State)
	}
	// The server's read and write timeouts are for pages; a visit's
	// connection lasts as long as the visit.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{r.Host}})
	if err != nil {
		return nil // Accept answered the request
	}
	s.opts.Video.Rooms.Serve(r.Context(), ws, *arr)
	return nil
}

// staffVisit is one row of the clinician's list of today's video visits.
type staffVisit struct {
	Visit   appointments.Appointment
	Patient staffPatient
	Status  telehealth.Status
	Open    bool
	URL     string
}

// showStaffVisits lists the signed-in clinician's video visits today
// (in the clinic's time zone), each with who waits and since when.
func (s *Server) showStaffVisits(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Video == nil || s.opts.Appointments == nil {
		return apperr.New(apperr.NotFound, "Video visits are not offered here.")
	}
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if u.account.Kind != identity.Staff || u.account.StaffRole != access.RoleClinician || u.account.PractitionerID == "" {
		return apperr.New(apperr.Forbidden, "The list of video visits is for clinicians.")
	}
	ctx := r.Context()
	now := s.opts.Appointments.Clock()
	day := now.In(s.zone())
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, s.zone())
	all, err := s.opts.Appointments.ForClinician(ctx, u.account.PractitionerID, from, from.AddDate(0, 0, 1))
	if err != nil {
		return err
	}
	req := clinical.Request{Principal: principal(u, r), RequestID: telemetry.RequestID(ctx)}
	var rows []staffVisit
	var ids []string
	for _, a := range all {
		if !a.Video {
			continue
		}
		st, err := s.opts.Video.Rooms.Status(ctx, a.ID)
		if err != nil {
			return err
		}
		sv := staffVisit{Visit: a, Status: st, Open: s.opts.Video.Window.Open(a.Start, a.End, now) && st.Ended.IsZero(),
			URL: "/visits/" + a.ID + "/video?for=" + url.QueryEscape(a.Patient)}
		sv.Visit.Start, sv.Visit.End = a.Start.In(s.zone()), a.End.In(s.zone())
		sv.Status.WaitingSince = st.WaitingSince.In(s.zone())
		rows = append(rows, sv)
		ids = append(ids, a.Patient)
	}
	who, err := s.staffPatients(ctx, req, ids, nil)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Patient = who[rows[i].Visit.Patient]
	}
	p := s.newPage(w, r, "staff.visits.title")
	p.Data = struct {
		Visits []staffVisit
		Now    time.Time
		Zone   string
		Done   bool
	}{rows, now, s.zoneName(), r.FormValue("done") == "wrapup"}
	return s.render(w, r, "staff_visits", p)
}

// showDeviceCheck lets a person try their camera, microphone and
// speaker before a visit, whenever they like.
func (s *Server) showDeviceCheck(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Video == nil {
		return apperr.New(apperr.NotFound, "Video visits are not offered here.")
	}
	if u := s.requireMFA(w, r); u == nil {
		return nil
	}
	mediaAllowed(w)
	p := s.newPage(w, r, "device.title")
	p.Data = struct{ Back string }{r.FormValue("visit")}
	if !fhir.ValidID(r.FormValue("visit")) {
		p.Data = struct{ Back string }{""}
	}
	return s.render(w, r, "device_check", p)
}

// videoStringKeys are the catalogue strings visit.js shows; {name} and
// the like are filled in by the script.
var videoStringKeys = []string{"video.connecting", "video.waiting.status", "video.in.status", "video.admitted", "video.joined", "video.left",
	"video.moved", "video.ended", "video.left.self", "video.rejoin", "video.mute", "video.unmute", "video.camera.off", "video.camera.on",
	"video.data.normal", "video.data.low", "video.data.audio", "video.data.auto", "video.quality.good", "video.quality.fair",
	"video.quality.poor", "video.quality.unknown", "video.quality.detail", "video.host.admit", "video.host.waiting.item", "video.host.checkedin",
	"video.host.notcheckedin", "video.host.callme", "video.host.end.confirm", "video.host.notice.sent", "video.media.none",
	"video.media.audio", "video.role.patient", "video.role.caregiver", "video.role.clinician", "video.role.guest", "video.problem.connection",
	"video.reconnected", "video.wait.minutes", "video.notice.from", "video.host.ended", "video.peer.video"}

// VideoStrings are visit.js's strings in the page's language.
func (p page) VideoStrings() map[string]string { return p.strings(videoStringKeys) }

var deviceStringKeys = []string{"device.starting", "device.ready", "device.failed", "device.permission.granted", "device.permission.denied",
	"device.permission.prompt", "device.permission.unknown", "device.level.quiet", "device.level.ok", "device.tone.playing", "device.nocamera"}

// DeviceStrings are device-check.js's strings in the page's language.
func (p page) DeviceStrings() map[string]string { return p.strings(deviceStringKeys) }

func (p page) strings(keys []string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = p.T(k)
	}
	return out
}

// readyVisit readies the page of a visit the person may join now: a
// fresh visit token, the WebSocket path, ICE servers, the media engine
// (as JSON for visit.js), and camera, microphone and the media server
// allowed for this page alone. keepalive is "" for guests (no session).
func (s *Server) readyVisit(w http.ResponseWriter, r *http.Request, vp *videoPage, arr telehealth.Arrival, ws, keepalive string) error {
	tok, err := s.opts.Video.Rooms.Tokens.Issue(r.Context(), telehealth.Claim{Appointment: arr.Appointment, Participant: arr.Participant, Role: arr.Role})
	if err != nil {
		return err
	}
	cfg := map[string]any{"ws": ws, "token": tok, "role": arr.Role, "ice": []telehealth.ICEServer{}, "provider": s.opts.Video.Provider}
	if keepalive != "" {
		cfg["keepalive"] = keepalive
	}
	if s.opts.Video.ICE != nil {
		cfg["ice"] = s.opts.Video.ICE(arr.Participant)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	vp.Config, vp.Provider = string(b), s.opts.Video.Provider
	mediaAllowed(w)
	s.allowMediaServer(w)
	return nil
}

// sameOrigin reports whether a WebSocket request comes from the portal's
// own pages (its Origin is the base URL's); one with another Origin, or
// none, is audited as refused.
func (s *Server) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	base, err := url.Parse(s.opts.BaseURL)
	if err == nil && origin != "" && origin == base.Scheme+"://"+base.Host {
		return true
	}
	if s.opts.Video != nil && s.opts.Video.Rooms.Audit != nil {
		rec := audit.Record{Type: audit.TypeSecurityAlert, Subtype: []audit.Coding{telehealth.SubtypeVideoVisit, telehealth.EventCoding(telehealth.EventRefused)},
			Action: audit.Execute, Outcome: audit.MinorFailure, Reason: "cross-origin", Address: clientAddr(r)}
		if u := currentUser(r.Context()); u != nil {
			rec.User = "Person/" + u.account.ID
		}
		if err := s.opts.Video.Rooms.Audit.Append(r.Context(), rec); err != nil {
			s.log.ErrorContext(r.Context(), "audit cross-origin", "err", err)
		}
	}
	return false
}

// allowMediaServer lets the visit page connect to the media engine
// (Video.ConnectTo) besides its own origin.
func (s *Server) allowMediaServer(w http.ResponseWriter) {
	if len(s.opts.Video.ConnectTo) == 0 {
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"), "connect-src 'self'",
		"connect-src 'self' "+strings.Join(s.opts.Video.ConnectTo, " "), 1))
}
