package web

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/appointments"
	"carefront/internal/checkin"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/ratelimit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// bookingHarness is the record harness with a month of the demo clinic's
// bookable time and booking on; Maria and Walter have accounts.
func bookingHarness(t *testing.T, db *sqldb.DB, more ...func(*Options)) (*authHarness, *appointments.Store) {
	t.Helper()
	var as *appointments.Store
	h := newAuthHarness(t, db, withRecords(t, db), func(o *Options) {
		as = &appointments.Store{DB: db, FHIR: store.New(db), Audit: o.Auth.Audit, Now: db.Now}
		o.Appointments = as
		for _, f := range more {
			f(o)
		}
	})
	if _, err := demo.SeedSlots(context.Background(), store.New(db), db.Now(), time.UTC); err != nil {
		t.Fatal(err)
	}
	h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
	h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
	return h, as
}

var slotLink = regexp.MustCompile(`href="/visits/book\?slot=(demo-slot-[a-z0-9-]+)(?:&amp;move=[^"]*)?"`)

// TestBookMoveAndCancelAVisit: Maria books a time from /visits/book
// (filtered by clinician), sees the visit with its calendar file, moves
// it, and cancels it after confirming; Walter gets 404 for her visit and
// its calendar file, and the time she holds is refused to him beside the
// time with nothing booked.
func TestBookMoveAndCancelAVisit(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _ := bookingHarness(t, db)
		h.signIn(t, "maria@example.com")
		if _, page := h.get(t, "/visits"); !strings.Contains(page, `href="/visits/book"`) || !strings.Contains(page, `href="/visits/demo-maria-appt-clinic"`) {
			t.Fatal("the visits page offers no booking, or no link to an upcoming visit")
		}
		res, page := h.get(t, "/visits/book?clinician=demo-dr-nguyen&week=1")
		if res.StatusCode != 200 || !strings.Contains(page, "Dr. Thao Nguyen") || strings.Contains(page, "<strong>") && strings.Contains(page, "Dr. Anika Patel</span>") {
			t.Fatalf("GET /visits/book = %d:\n%s", res.StatusCode, page)
		}
		m := slotLink.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no time offered:\n%s", page)
		}
		slot := m[1]
		_, page = h.get(t, "/visits/book?slot="+slot)
		if !strings.Contains(page, "Book this visit") || !strings.Contains(page, "Dr. Thao Nguyen") {
			t.Fatalf("confirm page:\n%s", page)
		}
		res, _ = h.post(t, "/visits/book", url.Values{"slot": {slot}, "reason": {strings.Repeat("x", 501)}})
		if res.StatusCode != 422 {
			t.Errorf("a reason too long: %d, want 422", res.StatusCode)
		}
		res, _ = h.post(t, "/visits/book", url.Values{"slot": {slot}, "reason": {"Blood sugar log <b>review</b>"}})
		loc := res.Header.Get("Location")
		if res.StatusCode != 303 || !strings.HasSuffix(loc, "?done=booked") {
			t.Fatalf("booking: %d %s", res.StatusCode, loc)
		}
		visit := strings.TrimSuffix(loc, "?done=booked")
		_, page = h.get(t, loc)
		for _, want := range []string{"Your visit is booked", "Booked", "Dr. Thao Nguyen", "Blood sugar log &lt;b&gt;review&lt;/b&gt;", visit + "/calendar.ics", "Move to another time", "Cancel this visit"} {
			if !strings.Contains(page, want) {
				t.Errorf("the visit page lacks %q", want)
			}
		}
		res, ics := h.get(t, visit+"/calendar.ics")
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/calendar") || !strings.Contains(ics, "BEGIN:VEVENT") || strings.Contains(ics, "Blood sugar") {
			t.Errorf("calendar file %d %s:\n%s", res.StatusCode, res.Header.Get("Content-Type"), ics)
		}

		// Walter: her visit does not exist for him; her time is taken.
		w := h.fresh()
		w.signIn(t, "walter@example.com")
		for _, p := range []string{visit, visit + "/calendar.ics", visit + "/cancel"} {
			if res, _ := w.get(t, p); res.StatusCode != 404 {
				t.Errorf("Walter GET %s = %d, want 404", p, res.StatusCode)
			}
		}
		if res, _ := w.post(t, visit+"/cancel", nil); res.StatusCode != 404 {
			t.Errorf("Walter cancels Maria's visit: %d, want 404", res.StatusCode)
		}
		res, page = w.post(t, "/visits/book", url.Values{"slot": {slot}})
		if res.StatusCode != 409 || !strings.Contains(page, "Someone else just booked this time") {
			t.Errorf("Walter books Maria's time: %d", res.StatusCode)
		}

		// Move, then cancel.
		_, page = h.get(t, "/visits/book?move="+strings.TrimPrefix(visit, "/visits/")+"&week=2")
		m = slotLink.FindStringSubmatch(page)
		if m == nil || !strings.Contains(page, "Move your visit") {
			t.Fatalf("no time to move to:\n%s", page)
		}
		res, _ = h.post(t, "/visits/book", url.Values{"slot": {m[1]}, "move": {strings.TrimPrefix(visit, "/visits/")}})
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || loc != visit+"?done=moved" {
			t.Fatalf("moving: %d %s", res.StatusCode, loc)
		}
		if _, page := h.get(t, visit+"/cancel"); !strings.Contains(page, "Yes, cancel the visit") {
			t.Fatal("no confirmation before cancelling")
		}
		res, _ = h.post(t, visit+"/cancel", nil)
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || loc != visit+"?done=cancelled" {
			t.Fatalf("cancelling: %d %s", res.StatusCode, loc)
		}
		if _, page := h.get(t, visit); !strings.Contains(page, "Cancelled") || strings.Contains(page, "Cancel this visit") {
			t.Error("the cancelled visit's page")
		}
		// The demo's clinic visit in ten days can be cancelled; the
		// video visit later today cannot, and says to call.
		res, page = h.post(t, "/visits/demo-maria-appt-video/cancel", nil)
		if res.StatusCode != 409 || !strings.Contains(page, "less than 24 hours") {
			t.Errorf("cancelling within 24 hours: %d", res.StatusCode)
		}
		if _, page := h.get(t, "/visits/demo-maria-appt-video"); !strings.Contains(page, "Booked") {
			t.Error("the refused cancellation changed the visit")
		}
	})
}

// TestBookingLimits: past the visits ahead one may hold, the confirm page
// says how many and what to do, with the status 409 and nothing booked;
// past the account's budget of bookings and cancellations the answer is
// 429 with Retry-After, and nothing changes either.
func TestBookingLimits(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, as := bookingHarness(t, db, func(o *Options) { o.BookingLimiter = ratelimit.New(10.0/86400, 3, 100) })
		as.MaxUpcoming = 1
		h.signIn(t, "maria@example.com")
		_, page := h.get(t, "/visits/book?clinician=demo-dr-nguyen&week=1")
		slots := slotLink.FindAllStringSubmatch(page, 3)
		if len(slots) < 3 {
			t.Fatalf("times offered: %d", len(slots))
		}
		if res, _ := h.post(t, "/visits/book", url.Values{"slot": {slots[0][1]}}); res.StatusCode != 303 {
			t.Fatalf("first booking: %d", res.StatusCode)
		}
		res, page := h.post(t, "/visits/book", url.Values{"slot": {slots[1][1]}, "reason": {"A second thing"}})
		if res.StatusCode != 409 || !strings.Contains(page, "the most visits you can hold booked ahead online (1)") || !strings.Contains(page, "A second thing</textarea>") {
			t.Fatalf("second booking at the cap: %d:\n%s", res.StatusCode, page)
		}
		if _, st, _ := as.Slot(context.Background(), slots[1][1]); st != "free" {
			t.Errorf("the refused time is %s", st)
		}
		// The third try spends the last of the budget; the fourth is refused
		// before anything is looked at.
		h.post(t, "/visits/book", url.Values{"slot": {slots[2][1]}})
		res, page = h.post(t, "/visits/book", url.Values{"slot": {slots[2][1]}})
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || !strings.Contains(page, "many visits in a short time") {
			t.Fatalf("past the budget: %d (Retry-After %q):\n%s", res.StatusCode, res.Header.Get("Retry-After"), page)
		}
		res, _ = h.post(t, "/visits/demo-maria-appt-clinic/cancel", nil)
		if res.StatusCode != 429 {
			t.Errorf("cancelling past the budget: %d", res.StatusCode)
		}
		if _, page := h.get(t, "/visits/demo-maria-appt-clinic"); !strings.Contains(page, "Booked") {
			t.Error("the refused cancellation changed the visit")
		}
		w := h.fresh()
		w.signIn(t, "walter@example.com")
		if res, _ := w.post(t, "/visits/book", url.Values{"slot": {slots[2][1]}}); res.StatusCode != 303 {
			t.Errorf("Walter has his own budget: %d", res.StatusCode)
		}
	})
}

// TestVisitTimesInTheClinicZone: with the clinic in Chicago, a booked
// visit's time on the visits list is the clinic's, as on its own page.
func TestVisitTimesInTheClinicZone(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		chicago, err := time.LoadLocation("America/Chicago")
		if err != nil {
			t.Fatal(err)
		}
		h, _ := bookingHarness(t, db, func(o *Options) { o.Auth.Zone = chicago })
		h.signIn(t, "maria@example.com")
		_, page := h.get(t, "/visits/book?clinician=demo-dr-nguyen&week=1")
		m := slotLink.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no time offered")
		}
		res, _ := h.post(t, "/visits/book", url.Values{"slot": {m[1]}})
		visit := strings.TrimSuffix(res.Header.Get("Location"), "?done=booked")
		_, one := h.get(t, visit)
		_, list := h.get(t, "/visits")
		when := regexp.MustCompile(`\d{1,2}:\d{2} [AP]M CST`).FindString(one)
		if when == "" || !strings.Contains(list, when) {
			t.Errorf("the visit's page says %q; the list does not say it too", when)
		}
	})
}

// TestCaregiverBookingFollowsTheGrant: a caregiver with "messages" only
// is not offered booking and is refused every booking page and action;
// one with visits books for the patient.
func TestCaregiverBookingFollowsTheGrant(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _ := bookingHarness(t, db)
		h.account(t, "dana@example.com", identity.Person, "", "")
		h.account(t, "linda@example.com", identity.Person, "", "")
		h.grant(t, demo.Walter, "dana@example.com", "messages")
		h.grant(t, demo.Walter, "linda@example.com", "medications-visits")

		h.signIn(t, "dana@example.com")
		for _, p := range []string{"/visits/book?for=demo-walter", "/visits/book?slot=demo-slot-patel-clinic-20261125-0930&for=demo-walter"} {
			if res, _ := h.get(t, p); res.StatusCode != 403 {
				t.Errorf("Dana GET %s = %d, want 403", p, res.StatusCode)
			}
		}
		if res, _ := h.post(t, "/visits/book?for=demo-walter", url.Values{"slot": {"demo-slot-patel-clinic-20261125-0930"}}); res.StatusCode != 403 {
			t.Errorf("Dana books for Walter: %d, want 403", res.StatusCode)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "linda@example.com")
		if _, page := h.get(t, "/visits?for=demo-walter"); !strings.Contains(page, `href="/visits/book?for=demo-walter"`) {
			t.Error("Linda, with visits, is not offered booking")
		}
		res, _ := h.post(t, "/visits/book?for=demo-walter", url.Values{"slot": {"demo-slot-patel-clinic-20261125-0930"}})
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || !strings.Contains(loc, "for=demo-walter") {
			t.Fatalf("Linda books for Walter: %d %s", res.StatusCode, loc)
		}
	})
}

// TestCheckInPages: Maria checks in for a visit three days ahead: the
// form lists her medicines and the visit's questionnaire; bad answers are
// shown beside their questions with what she typed and nothing is kept;
// good ones check her in, which the visit and the visits list show.
// Walter gets 404 for her check-in.
func TestCheckInPages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		var cs *checkin.Store
		h, as := bookingHarness(t, db, func(o *Options) {
			forms, _ := checkin.ParseForms(demo.CheckInForms)
			cs = &checkin.Store{DB: db, FHIR: store.New(db), Audit: o.Auth.Audit, Appointments: o.Appointments, Forms: forms, Now: db.Now}
			o.CheckIn = cs
		})
		ctx := context.Background()
		if err := demo.SeedClinic(ctx, store.New(db)); err != nil {
			t.Fatal(err)
		}
		slots, _ := as.Free(ctx, appointments.Filter{Clinician: "demo-dr-patel", Type: "follow-up", From: db.Now().AddDate(0, 0, 3)})
		h.signIn(t, "maria@example.com")
		res, _ := h.post(t, "/visits/book", url.Values{"slot": {slots[0].ID}})
		visit := strings.TrimSuffix(res.Header.Get("Location"), "?done=booked")
		_, page := h.get(t, visit)
		if !strings.Contains(page, `href="`+visit+`/checkin"`) {
			t.Fatalf("the visit does not offer check-in:\n%s", page)
		}
		_, page = h.get(t, visit+"/checkin")
		for _, want := range []string{"Are you still taking", "Are you still allergic to penicillin G", "Blue Valley Health Plan (demo) (Gold PPO)",
			"Before your follow-up visit", `name="q-pain-level"`, `type="date"`,
			// checkin.js shows the pain scale only after "in pain": yes.
			`data-when="{&#34;any&#34;:false,&#34;c&#34;:[{&#34;q&#34;:&#34;pain&#34;,&#34;op&#34;:&#34;=&#34;,&#34;v&#34;:&#34;true&#34;,&#34;t&#34;:&#34;boolean&#34;}]}"`,
			`data-when="{&#34;any&#34;:false,&#34;c&#34;:[{&#34;q&#34;:&#34;sugar&#34;,&#34;op&#34;:&#34;exists&#34;,&#34;v&#34;:&#34;true&#34;,&#34;t&#34;:&#34;decimal&#34;}]}"`} {
			if !strings.Contains(page, want) {
				t.Errorf("the check-in form lacks %q", want)
			}
		}
		meds := regexp.MustCompile(`name="(med-[a-z0-9-]+)" value="yes"`).FindAllStringSubmatch(page, -1)
		form := url.Values{"contact-ok": {"yes"}, "coverage-ok": {"yes"}, "allergy-demo-maria-allergy-penicillin": {"yes"},
			"q-topics": {"My sugar after lunch"}, "q-pain": {"true"}, "q-pain-level": {"12"}}
		for _, m := range meds {
			form.Set(m[1], "yes")
		}
		res, page = h.post(t, visit+"/checkin", form)
		if res.StatusCode != 422 || !strings.Contains(page, "Enter a number no larger than 10.") || !strings.Contains(page, `value="12"`) {
			t.Fatalf("an answer out of range: %d", res.StatusCode)
		}
		if at, _ := cs.CheckedIn(ctx, []string{strings.TrimPrefix(visit, "/visits/")}); len(at) != 0 {
			t.Error("a refused check-in was kept")
		}
		form.Set("q-pain-level", "3")
		res, _ = h.post(t, visit+"/checkin", form)
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || loc != visit+"?done=checkedin" {
			t.Fatalf("checking in: %d %s", res.StatusCode, loc)
		}
		if _, page := h.get(t, visit); !strings.Contains(page, "Checked in") || !strings.Contains(page, "Change your check-in answers") {
			t.Error("the visit does not show it is checked in")
		}
		if _, page := h.get(t, "/visits"); !strings.Contains(page, "Checked in") {
			t.Error("the visits list does not show the check-in")
		}
		w := h.fresh()
		w.signIn(t, "walter@example.com")
		if res, _ := w.get(t, visit+"/checkin"); res.StatusCode != 404 {
			t.Errorf("Walter opens Maria's check-in: %d", res.StatusCode)
		}
		if res, _ := w.post(t, visit+"/checkin", form); res.StatusCode != 404 {
			t.Errorf("Walter checks Maria in: %d", res.StatusCode)
		}
	})
}
