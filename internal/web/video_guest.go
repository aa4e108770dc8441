package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"

	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/telehealth"
)

const guestCookie = "__Host-carefront-guest"

func (s *Server) guestCookieName() string {
	if s.opts.Sessions != nil && s.opts.Sessions.Insecure {
		return "carefront-guest"
	}
	return guestCookie
}

// submitInviteGuest invites an interpreter or a family member to the
// visit by email: the patient, a caregiver with visits, or the
// clinician on it.
func (s *Server) submitInviteGuest(w http.ResponseWriter, r *http.Request) error {
	u, _, vp, _ := s.videoJoin(w, r)
	if vp == nil {
		return nil
	}
	if s.opts.Video.Guests == nil || (vp.State != "ready" && vp.State != "early" && vp.State != "consent") {
		return apperr.New(apperr.Forbidden, "guests cannot be invited to this visit now")
	}
	a := vp.Visit
	_, err := s.opts.Video.Guests.Invite(r.Context(), telehealth.GuestVisit{Appointment: a.ID, Patient: a.Patient, Start: a.Start,
		Closes: s.opts.Video.Window.Closes(a.End)}, r.FormValue("guest-name"), r.FormValue("guest-email"), "Person/"+u.account.ID, clientAddr(r))
	f := newForm()
	if inputErr(f, err) {
		p := s.recordPage(w, r, "video.title", vp)
		p.Status = http.StatusUnprocessableEntity
		vp.Guest, vp.Invite = f, true
		vp.Guest.Values["guest-name"], vp.Guest.Values["guest-email"] = r.FormValue("guest-name"), r.FormValue("guest-email")
		return s.render(w, r, "video", p)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "video.title", nil)
	return redirect(w, r, p.R("/visits/"+url.PathEscape(a.ID)+"/video?done=guest"))
}

// showGuestLanding is where a guest's link opens: a button to join, so
// that a mail scanner fetching the link does not spend it.
func (s *Server) showGuestLanding(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Video == nil || s.opts.Video.Guests == nil {
		return apperr.New(apperr.NotFound, "no such visit")
	}
	p := s.newPage(w, r, "guest.title")
	p.Data = struct{ Code string }{r.FormValue("code")}
	return s.render(w, r, "video_guest", p)
}

// submitGuestLanding spends the link and gives the browser the guest's
// session for the visit.
func (s *Server) submitGuestLanding(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Video == nil || s.opts.Video.Guests == nil {
		return apperr.New(apperr.NotFound, "no such visit")
	}
	if s.limited(w, r) {
		return nil
	}
	g, session, err := s.opts.Video.Guests.Redeem(r.Context(), r.FormValue("code"), clientAddr(r))
	if err != nil {
		if apperr.CodeOf(err) == apperr.Gone {
			p := s.newPage(w, r, "guest.title")
			p.Status = http.StatusGone
			p.Data = struct{ Code, Problem string }{"", "guest.link.spent"}
			return s.render(w, r, "video_guest", p)
		}
		return err
	}
	// MaxAge rather than Expires: the browser's clock need not agree.
	http.SetCookie(w, &http.Cookie{Name: s.guestCookieName(), Value: session, Path: "/", MaxAge: max(1, int(g.Expires.Sub(s.now()).Seconds())),
		HttpOnly: true, Secure: s.guestCookieName() == guestCookie, SameSite: http.SameSiteStrictMode})
	return redirect(w, r, "/visit-guest/visit")
}

// guest is the guest whose browser this is, and their visit's page
// state; it answers the request itself when there is none.
func (s *Server) guest(w http.ResponseWriter, r *http.Request) (*telehealth.Guest, *videoPage) {
	if s.opts.Video == nil || s.opts.Video.Guests == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "no such visit"))
		return nil, nil
	}
	c, _ := r.Cookie(s.guestCookieName())
	var session string
	if c != nil {
		session = c.Value
	}
	g, err := s.opts.Video.Guests.BySession(r.Context(), session)
	if err != nil {
		p := s.newPage(w, r, "guest.title")
		p.Status = http.StatusGone
		p.Data = struct{ Code, Problem string }{"", "guest.link.spent"}
		if rerr := s.render(w, r, "video_guest", p); rerr != nil {
			s.renderError(w, r, rerr)
		}
		return nil, nil
	}
	vp := &videoPage{Visit: &appointments.Appointment{ID: g.Appointment, Start: g.Starts.In(s.zone())}, Role: telehealth.RoleGuest, Zone: s.zoneName()}
	ended, err := s.opts.Video.Rooms.Ended(r.Context(), g.Appointment)
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil
	}
	now := s.now()
	vp.Opens = s.opts.Video.Window.Opens(g.Starts).In(s.zone())
	switch {
	case !ended.IsZero():
		vp.State = "ended"
	case now.Before(s.opts.Video.Window.Opens(g.Starts)):
		vp.State = "early"
	case !now.Before(g.Expires):
		vp.State = "over"
	default:
		vp.State = "ready"
	}
	return g, vp
}

func (s *Server) guestArrival(r *http.Request, g *telehealth.Guest) telehealth.Arrival {
	return telehealth.Arrival{Appointment: g.Appointment, Patient: g.Patient, Participant: g.Participant(), Role: telehealth.RoleGuest,
		Name: g.Name, Address: clientAddr(r)}
}

// showGuestVisit is the guest's visit page: the waiting room, then the
// visit. It shows nothing of the record: the time, and the visit.
func (s *Server) showGuestVisit(w http.ResponseWriter, r *http.Request) error {
	g, vp := s.guest(w, r)
	if g == nil {
		return nil
	}
	p := s.newPage(w, r, "video.title")
	p.Data = vp
	if vp.State == "ready" {
		if err := s.readyVisit(w, r, vp, s.guestArrival(r, g), "/visit-guest/ws", ""); err != nil {
			return err
		}
	} else if vp.State != "early" {
		p.Status = http.StatusGone
	}
	return s.render(w, r, "video", p)
}

// guestSocket is a guest's signalling connection.
func (s *Server) guestSocket(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return apperr.New(apperr.Forbidden, "video visits connect from the portal's own pages only")
	}
	g, vp := s.guest(w, r)
	if g == nil {
		return nil
	}
	if vp.State != "ready" {
		return apperr.New(apperr.Forbidden, "this visit cannot be joined now: %s", vp.State)
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{r.Host}})
	if err != nil {
		return nil
	}
	s.opts.Video.Rooms.Serve(r.Context(), ws, s.guestArrival(r, g))
	return nil
}
