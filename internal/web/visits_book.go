package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/checkin"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/questionnaire"
	"carefront/internal/telehealth"
)

// option is one choice of a filter.
type option struct{ Value, Label string }

// bookDay is one day's free times.
type bookDay struct {
	Day   time.Time
	Slots []appointments.Slot
}

type bookPage struct {
	*form
	Types, Clinicians, Locations []option
	Days                         []bookDay
	// Move is the visit being moved; nil when booking a new one.
	Move *appointments.Appointment
	// From and To are the week shown (To its last day).
	From, To time.Time
	// PrevURL and NextURL page by week, keeping the filters; SlotQuery
	// carries the visit being moved to a time's page.
	PrevURL, NextURL, SlotQuery string
	Zone                        string
}

// Weeks of free time offered, one page each.
const bookWeeks = 4

// zone is the clinic's time zone: visit times are shown there.
func (s *Server) zone() *time.Location {
	if s.opts.Auth != nil && s.opts.Auth.Zone != nil {
		return s.opts.Auth.Zone
	}
	return time.UTC
}

// bookingPatient is the person and record of a booking page: the record's
// owner, or a caregiver whose grant includes visits; staff do not book
// here. It reports nil when it answered.
func (s *Server) bookingPatient(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	if s.opts.Appointments == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "Booking is not offered here."))
		return nil, nil
	}
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	if u.account.Kind == identity.Staff {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Staff book visits in the clinic's scheduling system."))
		return nil, nil
	}
	ok, err := s.opts.Clinical.MayWrite(r.Context(), *req, "Appointment")
	if err != nil {
		s.renderError(w, r, err)
		return nil, nil
	}
	if !ok {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "You cannot book or change visits for this record. The person whose record it is can give you access to visits on their Sharing page."))
		return nil, nil
	}
	return u, req
}

// bookAllowed spends one of the account's bookings, moves and
// cancellations (Options.BookingLimiter). When they are spent it puts a
// plain answer at the top of the form and reports false.
func (s *Server) bookAllowed(w http.ResponseWriter, r *http.Request, u *signedIn, f *form) bool {
	if s.opts.BookingLimiter == nil {
		return true
	}
	ok, wait := s.opts.BookingLimiter.Allow(r.Context(), "book:"+u.account.ID)
	if !ok {
		f.Errors[""] = "book.too-often"
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	}
	return ok
}

// showBook lists free times by day, a week at a time, filtered by kind of
// visit, clinician and place. With move=ID it offers times to move that
// visit to; with slot=ID it asks to confirm that time.
func (s *Server) showBook(w http.ResponseWriter, r *http.Request) error {
	_, req := s.bookingPatient(w, r)
	if req == nil {
		return nil
	}
	ctx := r.Context()
	q := r.URL.Query()
	if q.Get("slot") != "" {
		return s.showBookSlotForm(w, r, req, newForm(), http.StatusOK)
	}
	d := bookPage{form: newForm(), Zone: s.zoneName()}
	if id := q.Get("move"); id != "" {
		a, err := s.opts.Appointments.Get(ctx, s.opts.Clinical, *req, id)
		if err != nil {
			return err
		}
		d.Move = a
	}
	all, err := s.opts.Appointments.Free(ctx, appointments.Filter{})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, sl := range all {
		for _, o := range []struct {
			list         *[]option
			value, label string
		}{{&d.Types, sl.Type, sl.TypeName}, {&d.Clinicians, sl.Clinician, sl.ClinicianName}, {&d.Locations, sl.Location, sl.Place}} {
			if k := o.value + "\x00" + o.label; o.value != "" && !seen[k] {
				seen[k] = true
				*o.list = append(*o.list, option{o.value, o.label})
			}
		}
	}
	for _, l := range [][]option{d.Types, d.Clinicians, d.Locations} {
		slices.SortFunc(l, func(a, b option) int { return strings.Compare(a.Label, b.Label) })
	}
	f := appointments.Filter{Type: q.Get("type"), Clinician: q.Get("clinician"), Location: q.Get("location")}
	d.Values["type"], d.Values["clinician"], d.Values["location"] = f.Type, f.Clinician, f.Location
	week, _ := strconv.Atoi(q.Get("week"))
	week = min(max(week, 0), bookWeeks-1)
	keep := url.Values{}
	for _, k := range []string{"type", "clinician", "location", "move"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	page := func(w int) string {
		keep.Set("week", strconv.Itoa(w))
		return "/visits/book?" + keep.Encode()
	}
	if week > 0 {
		d.PrevURL = page(week - 1)
	}
	if week < bookWeeks-1 {
		d.NextURL = page(week + 1)
	}
	if d.Move != nil {
		d.SlotQuery = "&move=" + url.QueryEscape(d.Move.ID)
	}
	today := s.opts.Appointments.Clock().In(s.zone())
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, s.zone())
	f.From, f.To = today.AddDate(0, 0, 7*week), today.AddDate(0, 0, 7*week+7)
	d.From, d.To = f.From, f.To.AddDate(0, 0, -1)
	// The week's times come from the month already read, not a second
	// search.
	for _, sl := range all {
		if sl.Start.Before(f.From) || !sl.Start.Before(f.To) || (f.Type != "" && sl.Type != f.Type) ||
			(f.Clinician != "" && sl.Clinician != f.Clinician) || (f.Location != "" && sl.Location != f.Location) {
			continue
		}
		sl.Start, sl.End = sl.Start.In(s.zone()), sl.End.In(s.zone())
		day := time.Date(sl.Start.Year(), sl.Start.Month(), sl.Start.Day(), 0, 0, 0, 0, s.zone())
		if n := len(d.Days); n == 0 || !d.Days[n-1].Day.Equal(day) {
			d.Days = append(d.Days, bookDay{Day: day})
		}
		d.Days[len(d.Days)-1].Slots = append(d.Days[len(d.Days)-1].Slots, sl)
	}
	title := "book.title"
	if d.Move != nil {
		title = "book.move.title"
	}
	return s.render(w, r, "visit_book", s.recordPage(w, r, title, d))
}

type bookConfirmPage struct {
	*form
	Slot *appointments.Slot
	Move *appointments.Appointment
	Zone string
	// BackURL leads to the other times (for the visit being moved).
	BackURL string
	// Policy is the hours before a visit it can still be changed; Max the
	// visits ahead one may hold.
	Policy, Max int
}

// showBookSlotForm asks the person to confirm a time (and, for a new
// visit, say what it is for).
func (s *Server) showBookSlotForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	ctx := r.Context()
	sl, state, err := s.opts.Appointments.Slot(ctx, r.FormValue("slot"))
	if err != nil {
		return err
	}
	if state != "free" && f.Errors["slot"] == "" {
		f.Errors["slot"] = "book.slot-taken"
		status = http.StatusConflict
	}
	sl.Start, sl.End = sl.Start.In(s.zone()), sl.End.In(s.zone())
	lim := s.opts.Appointments.Limits()
	d := bookConfirmPage{form: f, Slot: sl, Zone: s.zoneName(), BackURL: "/visits/book", Policy: int(lim.Policy.Hours()), Max: lim.MaxUpcoming}
	if id := r.FormValue("move"); id != "" {
		d.BackURL += "?move=" + url.QueryEscape(id)
		if d.Move, err = s.opts.Appointments.Get(ctx, s.opts.Clinical, *req, id); err != nil {
			return err
		}
		d.Move.Start = d.Move.Start.In(s.zone())
	}
	title := "book.confirm.title"
	if d.Move != nil {
		title = "book.move.title"
	}
	p := s.recordPage(w, r, title, d)
	p.Status = status
	return s.render(w, r, "visit_book_confirm", p)
}

// submitBookSlot books the time, or moves the visit named by move to it.
func (s *Server) submitBookSlot(w http.ResponseWriter, r *http.Request) error {
	u, req := s.bookingPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	f.Values["reason"] = r.PostFormValue("reason")
	who := appointments.Author{Account: u.account.ID}
	var a *appointments.Appointment
	var err error
	done := "booked"
	if !s.bookAllowed(w, r, u, f) {
		return s.showBookSlotForm(w, r, req, f, http.StatusTooManyRequests)
	}
	if id := r.PostFormValue("move"); id != "" {
		a, err = s.opts.Appointments.Move(r.Context(), s.opts.Clinical, *req, who, id, r.FormValue("slot"))
		done = "moved"
	} else {
		a, err = s.opts.Appointments.Book(r.Context(), s.opts.Clinical, *req, who, r.FormValue("slot"), f.Values["reason"])
	}
	if inputErr(f, err) {
		status := http.StatusUnprocessableEntity
		if errors.Is(err, appointments.ErrSlotTaken) || apperr.CodeOf(err) == apperr.Conflict {
			status = http.StatusConflict
		}
		if apperr.CodeOf(err) == apperr.NotFound {
			return err
		}
		return s.showBookSlotForm(w, r, req, f, status)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "visit.title", nil)
	return redirect(w, r, p.R("/visits/"+a.ID+"?done="+done))
}

type visitPage struct {
	*form
	Visit      *appointments.Appointment
	Changeable bool
	Done       string
	Policy     int // hours
	Zone       string
	// CheckInOpen: check-in is open (from 7 days before); CheckedIn is
	// when it was done.
	CheckInOpen bool
	CheckedIn   time.Time
	// Join: a video visit, joinable from JoinOpens (JoinOpen: now) until
	// the window closes.
	Join      bool
	JoinOpen  bool
	JoinOpens time.Time
	// After is a video visit's write-back (summary, tasks, survey).
	After *telehealth.After
	// Survey lists the after-visit questions with their answers.
	Survey []telehealth.SurveyQuestion
}

// showVisit shows one of the person's visits with what they can do.
func (s *Server) showVisit(w http.ResponseWriter, r *http.Request) error {
	_, req := s.patient(w, r)
	if req == nil {
		return nil
	}
	return s.showVisitForm(w, r, req, "visit", newForm(), http.StatusOK)
}

func (s *Server) showVisitForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, tmpl string, f *form, status int) error {
	if s.opts.Appointments == nil {
		return apperr.New(apperr.NotFound, "no such visit")
	}
	a, err := s.opts.Appointments.Get(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	changeable := a.Changeable(s.opts.Appointments.Clock())
	a.Start, a.End = a.Start.In(s.zone()), a.End.In(s.zone())
	done := r.FormValue("done")
	if !slices.Contains([]string{"booked", "moved", "cancelled", "checkedin", "survey"}, done) {
		done = ""
	}
	policy := s.opts.Appointments.Limits().Policy
	title := "visit.title"
	if tmpl == "visit_cancel" {
		title = "visit.cancel.title"
	}
	vp := visitPage{form: f, Visit: a, Changeable: changeable, Done: done, Policy: int(policy.Hours()), Zone: s.zoneName()}
	if v := s.opts.Video; v != nil && v.Records != nil && a.Video && a.Status == "fulfilled" {
		after, err := v.Records.After(r.Context(), s.opts.Clinical, *req, a.ID)
		if err != nil {
			return err
		}
		vp.After, vp.Survey = after, telehealth.Survey
	}
	if v := s.opts.Video; v != nil && a.Video && a.Status == "booked" {
		now := s.opts.Appointments.Clock()
		vp.Join = now.Before(v.Window.Closes(a.End))
		vp.JoinOpen = v.Window.Open(a.Start, a.End, now)
		vp.JoinOpens = v.Window.Opens(a.Start).In(s.zone())
	}
	if s.opts.CheckIn != nil && a.Status == "booked" {
		now := s.opts.Appointments.Clock()
		vp.CheckInOpen = !now.Before(a.Start.Add(-checkin.Window)) && now.Before(a.Start)
		at, err := s.opts.CheckIn.CheckedIn(r.Context(), []string{a.ID})
		if err != nil {
			return err
		}
		vp.CheckedIn = at[a.ID]
	}
	p := s.recordPage(w, r, title, vp)
	p.Status = status
	return s.render(w, r, tmpl, p)
}

// showCancelVisit asks the person to confirm cancelling.
func (s *Server) showCancelVisit(w http.ResponseWriter, r *http.Request) error {
	_, req := s.bookingPatient(w, r)
	if req == nil {
		return nil
	}
	return s.showVisitForm(w, r, req, "visit_cancel", newForm(), http.StatusOK)
}

// submitCancelVisit cancels the visit; a refusal (too late, already
// cancelled) is shown on the visit's page with nothing changed.
func (s *Server) submitCancelVisit(w http.ResponseWriter, r *http.Request) error {
	u, req := s.bookingPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	if !s.bookAllowed(w, r, u, f) {
		return s.showVisitForm(w, r, req, "visit", f, http.StatusTooManyRequests)
	}
	_, err := s.opts.Appointments.Cancel(r.Context(), s.opts.Clinical, *req, appointments.Author{Account: u.account.ID}, r.PathValue("id"))
	if inputErr(f, err) {
		return s.showVisitForm(w, r, req, "visit", f, http.StatusConflict)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "visit.title", nil)
	return redirect(w, r, p.R("/visits/"+r.PathValue("id")+"?done=cancelled"))
}

// downloadCalendar answers the visit as an iCalendar file.
func (s *Server) downloadCalendar(w http.ResponseWriter, r *http.Request) error {
	_, req := s.patient(w, r)
	if req == nil {
		return nil
	}
	if s.opts.Appointments == nil {
		return apperr.New(apperr.NotFound, "no such visit")
	}
	a, err := s.opts.Appointments.Get(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	p := s.newPage(w, r, "visit.title")
	host := "carefront"
	if u, err := url.Parse(s.opts.BaseURL); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	text := appointments.CalendarText{Summary: p.T("visit.cal.summary", "Clinician", a.ClinicianName),
		Video: p.T("visit.cal.video"), Note: p.T("visit.cal.note") + " "}
	body := appointments.Calendar(a, host, s.opts.BaseURL+p.R("/visits/"+a.ID), text, time.Now())
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="visit.ics"`)
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write([]byte(body))
	return err
}

// VisitType names a kind of visit in the page's language: the catalogue's
// name for the clinic's code, else the name the clinic gave it.
func (p page) VisitType(code, name string) string {
	id := "book.type." + code
	if s := p.T(id); s != id {
		return s
	}
	return name
}

var weekdaysES = []string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}

// Weekday names a date's day of the week in the page's language.
func (p page) Weekday(t time.Time) string {
	if p.Lang == "es" {
		return weekdaysES[t.Weekday()]
	}
	return t.Weekday().String()
}

// Clock writes a time of day with its zone's abbreviation.
func (p page) Clock(t time.Time) string { return p.Time(t) + " " + t.Format("MST") }

// checkinPage is the check-in form of a visit.
type checkinPage struct {
	*form
	Sheet *checkin.Sheet
	Zone  string
}

// showCheckIn shows the check-in form of one of the person's visits.
func (s *Server) showCheckIn(w http.ResponseWriter, r *http.Request) error {
	_, req := s.bookingPatient(w, r)
	if req == nil {
		return nil
	}
	return s.showCheckInForm(w, r, req, newForm(), http.StatusOK)
}

func (s *Server) showCheckInForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	if s.opts.CheckIn == nil {
		return apperr.New(apperr.NotFound, "Check-in is not offered here.")
	}
	sh, err := s.opts.CheckIn.Open(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	sh.Visit.Start = sh.Visit.Start.In(s.zone())
	p := s.recordPage(w, r, "checkin.title", checkinPage{form: f, Sheet: sh, Zone: s.zoneName()})
	p.Status = status
	return s.render(w, r, "visit_checkin", p)
}

// submitCheckIn records the check-in; every problem is shown beside its
// field, with what was typed, and nothing is kept.
func (s *Server) submitCheckIn(w http.ResponseWriter, r *http.Request) error {
	u, req := s.bookingPatient(w, r)
	if req == nil {
		return nil
	}
	if s.opts.CheckIn == nil {
		return apperr.New(apperr.NotFound, "Check-in is not offered here.")
	}
	if err := r.ParseForm(); err != nil {
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	f := newForm()
	sub := checkin.Submission{ContactOK: r.PostFormValue("contact-ok"), ContactChanges: r.PostFormValue("contact-changes"),
		CoverageOK: r.PostFormValue("coverage-ok"), CoverageChange: r.PostFormValue("coverage-changes"),
		Medicines: map[string]string{}, Allergies: map[string]string{},
		Answers: questionnaire.Answers{Values: map[string]string{}, Other: map[string]string{}}}
	for k, vs := range r.PostForm {
		v := vs[0]
		f.Values[k] = v
		switch {
		case strings.HasPrefix(k, "med-"):
			sub.Medicines[strings.TrimPrefix(k, "med-")] = v
		case strings.HasPrefix(k, "allergy-"):
			sub.Allergies[strings.TrimPrefix(k, "allergy-")] = v
		case strings.HasPrefix(k, "q-other-"):
			sub.Answers.Other[strings.TrimPrefix(k, "q-other-")] = v
		case strings.HasPrefix(k, "q-"):
			sub.Answers.Values[strings.TrimPrefix(k, "q-")] = v
		}
	}
	err := s.opts.CheckIn.Submit(r.Context(), s.opts.Clinical, *req, u.account.ID, r.PathValue("id"), sub)
	if inputErr(f, err) {
		return s.showCheckInForm(w, r, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "visit.title", nil)
	return redirect(w, r, p.R("/visits/"+r.PathValue("id")+"?done=checkedin"))
}
