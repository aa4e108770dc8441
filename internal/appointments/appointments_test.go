package appointments_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/jobs"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"

	ics "github.com/arran4/golang-ical"
)

// queued records the jobs a booking enqueues.
type queued struct {
	mu   sync.Mutex
	jobs []queuedJob
}

type queuedJob struct {
	args jobs.Args
	at   time.Time
}

func (q *queued) EnqueueTx(_ context.Context, _ *sqldb.Tx, args jobs.Args, o *jobs.EnqueueOptions) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, queuedJob{args, o.At})
	return true, nil
}

func (q *queued) take() []queuedJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.jobs
	q.jobs = nil
	return j
}

// reminded records the reminders sent.
type reminded struct {
	mu   sync.Mutex
	sent []string
}

func (r *reminded) QueueVisitReminderTo(_ context.Context, _ *sqldb.Tx, account string, at time.Time, clinic string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, fmt.Sprintf("to:%s %s %s", account, at.UTC().Format(time.RFC3339), clinic))
	return nil
}

func (r *reminded) QueueVisitReminder(_ context.Context, _ *sqldb.Tx, patient string, at time.Time, clinic string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, fmt.Sprintf("%s %s %s", patient, at.UTC().Format(time.RFC3339), clinic))
	return nil
}

type fixture struct {
	s      *appointments.Store
	gw     *clinical.Gateway
	db     *sqldb.DB
	clock  *sqldbtest.Clock
	jobs   *queued
	sent   *reminded
	maria  clinical.Request
	walter clinical.Request
}

// newFixture: the demo population and a month of its clinic's bookable
// time, on a clock at Monday 2026-11-23 10:00 UTC.
func newFixture(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := sqldbtest.UseClock(db)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(ctx) })
	st := store.New(db)
	if _, err := demo.Seed(ctx, st, aw, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := demo.SeedSlots(ctx, st, clock.Now(), time.UTC); err != nil || n < 200 {
		t.Fatalf("SeedSlots = %d, %v", n, err)
	}
	f := &fixture{db: db, clock: clock, jobs: &queued{}, sent: &reminded{},
		gw: &clinical.Gateway{Source: st, Audit: aw, Policies: &access.Store{DB: db}, Now: db.Now}}
	f.s = &appointments.Store{DB: db, FHIR: st, Audit: aw, Jobs: f.jobs, Reminders: f.sent, Now: db.Now}
	f.maria = clinical.Request{Principal: access.Principal{User: "Person/acct-maria", Patient: demo.Maria}}
	f.walter = clinical.Request{Principal: access.Principal{User: "Person/acct-walter", Patient: demo.Walter}}
	return f
}

var maria = appointments.Author{Account: "acct-maria"}

// slotOn finds a free slot of a clinician days ahead.
func (f *fixture) slotOn(t *testing.T, clinician string, days int) appointments.Slot {
	t.Helper()
	from := f.clock.Now().AddDate(0, 0, days)
	slots, err := f.s.Free(context.Background(), appointments.Filter{Clinician: clinician, From: from})
	if err != nil || len(slots) == 0 {
		t.Fatalf("no free slot of %s %d days ahead: %v", clinician, days, err)
	}
	return slots[0]
}

// TestBookMoveAndCancel: Maria books a free time of her clinician; it is
// no longer offered, its reminders are queued a day and an hour before;
// she moves it (the old time is offered again, new reminders follow the
// new time) and cancels it (its time is free again). Each change is
// audited with her as the patient.
func TestBookMoveAndCancel(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		all, err := f.s.Free(ctx, appointments.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, sl := range all {
			if sl.Start.Before(f.clock.Now().Add(time.Hour)) || sl.ClinicianName == "" || sl.Place == "" || sl.TypeName == "" || sl.Clinic == "" {
				t.Fatalf("offered slot %+v", sl)
			}
		}
		video, err := f.s.Free(ctx, appointments.Filter{Clinician: "demo-dr-patel", Location: "demo-loc-video", Type: "new-concern"})
		if err != nil || len(video) == 0 {
			t.Fatalf("filtered: %v %v", video, err)
		}
		for _, sl := range video {
			if !sl.Video || sl.Clinician != "demo-dr-patel" || sl.Type != "new-concern" {
				t.Fatalf("filter let through %+v", sl)
			}
		}

		slot := f.slotOn(t, "demo-dr-patel", 3)
		a, err := f.s.Book(ctx, f.gw, f.maria, maria, slot.ID, "My feet tingle at night")
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != "booked" || !a.Start.Equal(slot.Start) || a.ClinicianName != "Dr. Anika Patel" || a.Reason != "My feet tingle at night" {
			t.Errorf("booked %+v", a)
		}
		if _, status, _ := f.s.Slot(ctx, slot.ID); status != "busy" {
			t.Errorf("the booked slot is %s", status)
		}
		free, _ := f.s.Free(ctx, appointments.Filter{Clinician: "demo-dr-patel"})
		for _, sl := range free {
			if sl.ID == slot.ID {
				t.Error("the booked slot is still offered")
			}
		}
		got, err := f.s.Get(ctx, f.gw, f.maria, a.ID)
		if err != nil || got.Status != "booked" || got.Slot != slot.ID || !got.Changeable(f.clock.Now()) {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		js := f.jobs.take()
		if len(js) != 2 || !js[0].at.Equal(slot.Start.Add(-24*time.Hour)) || !js[1].at.Equal(slot.Start.Add(-time.Hour)) {
			t.Fatalf("reminders %+v", js)
		}

		next := f.slotOn(t, "demo-dr-nguyen", 5)
		moved, err := f.s.Move(ctx, f.gw, f.maria, maria, a.ID, next.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !moved.Start.Equal(next.Start) || moved.Clinician != "demo-dr-nguyen" || moved.Version == got.Version {
			t.Errorf("moved %+v", moved)
		}
		if _, status, _ := f.s.Slot(ctx, slot.ID); status != "free" {
			t.Errorf("the old slot is %s after the move", status)
		}
		if js := f.jobs.take(); len(js) != 2 || !js[1].at.Equal(next.Start.Add(-time.Hour)) {
			t.Errorf("reminders after the move %+v", js)
		}

		if _, err := f.s.Cancel(ctx, f.gw, f.maria, maria, a.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = f.s.Get(ctx, f.gw, f.maria, a.ID)
		if got.Status != "cancelled" || got.Changeable(f.clock.Now()) {
			t.Errorf("after cancelling: %+v", got)
		}
		if _, status, _ := f.s.Slot(ctx, next.ID); status != "free" {
			t.Errorf("the cancelled visit's slot is %s", status)
		}
		// The freed time can be booked again.
		if _, err := f.s.Book(ctx, f.gw, f.walter, appointments.Author{Account: "acct-walter"}, next.ID, ""); err != nil {
			t.Errorf("booking a freed slot: %v", err)
		}
		events := strings.Join(audittest.Events(t, db), "\n")
		for _, want := range []string{`"reference":"Appointment/` + a.ID, `"code":"create"`, `"code":"update"`} {
			if !strings.Contains(events, want) {
				t.Errorf("the audit trail lacks %s", want)
			}
		}
	})
}

// TestBookingRefusesBadInput: a taken time, a time that does not exist, a
// reason too long, a change inside the policy window, a visit of another
// patient, a caregiver whose grant has no visits: each refused with a
// clear error, and nothing changes.
func TestBookingRefusesBadInput(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		soon := f.slotOn(t, "demo-dr-patel", 0) // later today: inside 24 hours
		a, err := f.s.Book(ctx, f.gw, f.maria, maria, soon.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		claims := func() int {
			var n int
			db.ReadOne(ctx, func(tx *sqldb.Tx) error {
				return tx.QueryRow(ctx, "SELECT COUNT(*) FROM appointment_slot").Scan(&n)
			})
			return n
		}
		later := f.slotOn(t, "demo-dr-patel", 4)
		caregiver := clinical.Request{Principal: access.Principal{User: "RelatedPerson/dana", Patient: demo.Maria, Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g", Kinds: []string{"Communication"}, Until: f.clock.Now().Add(time.Hour)}}}
		for name, tc := range map[string]struct {
			do    func() error
			code  apperr.Code
			field string
		}{
			"a taken slot": {func() error { _, err := f.s.Book(ctx, f.gw, f.walter, maria, soon.ID, ""); return err }, apperr.Conflict, "slot"},
			"no such slot": {func() error { _, err := f.s.Book(ctx, f.gw, f.maria, maria, "demo-slot-nowhere", ""); return err }, apperr.NotFound, "slot"},
			"a long reason": {func() error {
				_, err := f.s.Book(ctx, f.gw, f.maria, maria, later.ID, strings.Repeat("x", 501))
				return err
			}, apperr.Invalid, "reason"},
			"cancel too late": {func() error { _, err := f.s.Cancel(ctx, f.gw, f.maria, maria, a.ID); return err }, apperr.Conflict, ""},
			"move too late":   {func() error { _, err := f.s.Move(ctx, f.gw, f.maria, maria, a.ID, later.ID); return err }, apperr.Conflict, ""},
			"another's visit": {func() error { _, err := f.s.Cancel(ctx, f.gw, f.walter, maria, a.ID); return err }, apperr.NotFound, "-"},
			"another's read":  {func() error { _, err := f.s.Get(ctx, f.gw, f.walter, a.ID); return err }, apperr.NotFound, "-"},
			"messages only":   {func() error { _, err := f.s.Book(ctx, f.gw, caregiver, maria, later.ID, ""); return err }, apperr.Forbidden, "-"},
			"no such visit":   {func() error { _, err := f.s.Cancel(ctx, f.gw, f.maria, maria, "nope"); return err }, apperr.NotFound, "-"},
		} {
			before := claims()
			err := tc.do()
			var ie *apperr.FieldError
			if apperr.CodeOf(err) != tc.code || (tc.field != "-" && (!errors.As(err, &ie) || ie.Field != tc.field)) {
				t.Errorf("%s: err = %v (%s), want %s beside %q", name, err, apperr.CodeOf(err), tc.code, tc.field)
			}
			if claims() != before {
				t.Errorf("%s changed the bookings", name)
			}
		}
		got, _ := f.s.Get(ctx, f.gw, f.maria, a.ID)
		if got.Status != "booked" || got.Slot != soon.ID {
			t.Errorf("after the refusals: %+v", got)
		}
	})
}

// TestConcurrentBookingOfOneSlot: sixteen people booking one time at once
// end with exactly one booking; the others are told it was taken.
func TestConcurrentBookingOfOneSlot(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		slot := f.slotOn(t, "demo-dr-nguyen", 2)
		const n = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, taken := 0, 0
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := clinical.Request{Principal: access.Principal{User: fmt.Sprintf("Person/acct-%d", i), Patient: []string{demo.Maria, demo.Walter, demo.Sam, demo.Lily}[i%4]}}
				<-start
				_, err := f.s.Book(ctx, f.gw, req, appointments.Author{Account: fmt.Sprintf("acct-%d", i)}, slot.ID, "")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, appointments.ErrSlotTaken):
					taken++
				default:
					t.Errorf("booking %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if won != 1 || taken != n-1 {
			t.Fatalf("%d bookings won and %d were told the slot was taken; want 1 and %d", won, taken, n-1)
		}
		var claims, booked int
		db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			tx.QueryRow(ctx, "SELECT COUNT(*) FROM appointment_slot WHERE slot_id = ?", slot.ID).Scan(&claims)
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM fhir_ref WHERE type = 'Appointment' AND param = 'slot' AND target_id = ?", slot.ID).Scan(&booked)
		})
		if claims != 1 || booked != 1 {
			t.Errorf("%d claims and %d appointments on the slot, want 1 and 1", claims, booked)
		}
	})
}

// TestUpcomingVisitCap: a patient holds at most MaxUpcoming visits ahead.
// One more is refused with the number named, audited, and nothing changes;
// a cancelled or past visit makes room again; and eight bookings of
// different times by one patient at once let exactly the cap through (the
// count is taken under the patient's lock on PostgreSQL).
func TestUpcomingVisitCap(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		f.s.MaxUpcoming = 2
		ctx := context.Background()
		slots, err := f.s.Free(ctx, appointments.Filter{Clinician: "demo-dr-nguyen", From: f.clock.Now().Add(2 * time.Hour)})
		if err != nil || len(slots) < 12 {
			t.Fatalf("free slots: %d, %v", len(slots), err)
		}
		first, err := f.s.Book(ctx, f.gw, f.maria, maria, slots[0].ID, "")
		if err != nil {
			t.Fatal(err)
		}
		ahead := f.slotOn(t, "demo-dr-patel", 3) // outside the policy window
		second, err := f.s.Book(ctx, f.gw, f.maria, maria, ahead.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.s.Book(ctx, f.gw, f.maria, maria, slots[6].ID, "")
		var ie *apperr.FieldError
		if !errors.As(err, &ie) || ie.Key != appointments.KeyTooMany || ie.Bound != "2" || apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("a third visit ahead: %v, want too-many naming 2", err)
		}
		if outcome, patient, event := audittest.Last(t, db); outcome != "4" || patient != "Patient/"+demo.Maria || !strings.Contains(event, "too-many-visits") {
			t.Errorf("the refusal was audited as %s %s %s", outcome, patient, event)
		}
		if _, status, _ := f.s.Slot(ctx, slots[6].ID); status != "free" {
			t.Errorf("the refused slot is %s", status)
		}
		// Another patient is not held by Maria's count.
		if _, err := f.s.Book(ctx, f.gw, f.walter, appointments.Author{Account: "acct-walter"}, slots[6].ID, ""); err != nil {
			t.Errorf("Walter booking: %v", err)
		}
		// Moving keeps the count; cancelling makes room.
		if _, err := f.s.Move(ctx, f.gw, f.maria, maria, second.ID, f.slotOn(t, "demo-dr-patel", 5).ID); err != nil {
			t.Errorf("moving at the cap: %v", err)
		}
		if _, err := f.s.Cancel(ctx, f.gw, f.maria, maria, second.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Book(ctx, f.gw, f.maria, maria, slots[8].ID, ""); err != nil {
			t.Errorf("booking after cancelling one: %v", err)
		}
		// A visit that has passed no longer counts.
		f.clock.Add(slots[0].End.Sub(f.clock.Now()) + time.Minute)
		if got, _ := f.s.Get(ctx, f.gw, f.maria, first.ID); !got.Start.Before(f.clock.Now()) {
			t.Fatalf("the clock did not pass the first visit")
		}
		later, err := f.s.Free(ctx, appointments.Filter{Clinician: "demo-dr-patel", From: f.clock.Now().Add(time.Hour)})
		if err != nil || len(later) < 10 {
			t.Fatalf("free slots: %d, %v", len(later), err)
		}
		if _, err := f.s.Book(ctx, f.gw, f.maria, maria, later[0].ID, ""); err != nil {
			t.Errorf("booking after a visit passed: %v", err)
		}

		// Sam books eight times at once with room for two.
		sam := clinical.Request{Principal: access.Principal{User: "Person/acct-sam", Patient: demo.Sam}}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, many := 0, 0
		start := make(chan struct{})
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := f.s.Book(ctx, f.gw, sam, appointments.Author{Account: "acct-sam"}, later[1+i].ID, "")
				mu.Lock()
				defer mu.Unlock()
				var ie *apperr.FieldError
				switch {
				case err == nil:
					won++
				case errors.As(err, &ie) && ie.Key == appointments.KeyTooMany:
					many++
				default:
					t.Errorf("Sam's booking %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		var held int
		db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM appointment_slot WHERE patient_id = ?", demo.Sam).Scan(&held)
		})
		if won != 2 || many != 6 || held != 2 {
			t.Errorf("eight bookings at once: %d won, %d refused, %d held; want 2, 6, 2", won, many, held)
		}
	})
}

// TestRemindersFollowTheVisit: a reminder names the patient, the time and
// the clinic's name (never the clinician or the reason); a reminder for a
// time the visit was moved from, or of a cancelled visit, sends nothing.
func TestRemindersFollowTheVisit(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		slot := f.slotOn(t, "demo-dr-patel", 3)
		a, err := f.s.Book(ctx, f.gw, f.maria, maria, slot.ID, "A private reason")
		if err != nil {
			t.Fatal(err)
		}
		first := f.jobs.take()
		if err := f.s.SendReminder(ctx, first[0].args.(appointments.ReminderArgs)); err != nil {
			t.Fatal(err)
		}
		want := demo.Maria + " " + slot.Start.UTC().Format(time.RFC3339) + " Riverside Family Health (demo)"
		if len(f.sent.sent) != 1 || f.sent.sent[0] != want {
			t.Fatalf("sent %q, want %q", f.sent.sent, want)
		}
		// The job run again (a crash after its emails were queued, before
		// it was marked done) queues nothing more.
		before := audittest.Count(t, db)
		if err := f.s.SendReminder(ctx, first[0].args.(appointments.ReminderArgs)); err != nil || len(f.sent.sent) != 1 {
			t.Errorf("the same reminder run twice sent %q, %v", f.sent.sent, err)
		}
		if n := audittest.Count(t, db); n != before {
			t.Errorf("the second run of a sent reminder wrote %d audit records", n-before)
		}
		next := f.slotOn(t, "demo-dr-patel", 6)
		if _, err := f.s.Move(ctx, f.gw, f.maria, maria, a.ID, next.ID); err != nil {
			t.Fatal(err)
		}
		moved := f.jobs.take()
		f.s.SendReminder(ctx, first[1].args.(appointments.ReminderArgs)) // the old time's
		if len(f.sent.sent) != 1 {
			t.Errorf("a reminder for the old time was sent: %q", f.sent.sent)
		}
		if _, err := f.s.Cancel(ctx, f.gw, f.maria, maria, a.ID); err != nil {
			t.Fatal(err)
		}
		f.s.SendReminder(ctx, moved[0].args.(appointments.ReminderArgs))
		if len(f.sent.sent) != 1 {
			t.Errorf("a reminder of a cancelled visit was sent: %q", f.sent.sent)
		}
	})
}

// TestRemindersReachCaregivers: a visit's reminder also goes to each
// caregiver whose grant lets them see the visit when it is sent, named by
// account; not to one whose grant has no visits, nor to one whose grant
// has ended. The disclosure is on the trail with the caregiver.
func TestRemindersReachCaregivers(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		now := f.clock.Now()
		proxies := []access.Proxy{
			{GrantID: "g1", Account: "Person/acct-linda", Kinds: access.DataKinds["visits"], Until: now.AddDate(0, 1, 0), Granted: now},
			{GrantID: "g2", Account: "Person/acct-bob", Kinds: access.DataKinds["medications"], Until: now.AddDate(0, 1, 0), Granted: now},
			{GrantID: "g3", Account: "Person/acct-carl", Until: now.AddDate(0, 0, 2), Granted: now},
		}
		f.gw.Policies = &access.Store{DB: db, Loaders: []access.Loader{func(_ context.Context, _ *sqldb.Tx, patient string, p *access.Policy) error {
			if patient == demo.Walter {
				p.Proxies = append(p.Proxies, proxies...)
			}
			return nil
		}}}
		f.s.Gateway = f.gw
		f.s.Caregivers = func(_ context.Context, patient string) ([]string, error) {
			if patient != demo.Walter {
				return nil, nil
			}
			return []string{"Person/acct-linda", "Person/acct-bob", "Person/acct-carl"}, nil
		}
		slot := f.slotOn(t, "demo-dr-patel", 5)
		if _, err := f.s.Book(ctx, f.gw, f.walter, appointments.Author{Account: "acct-walter"}, slot.ID, ""); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(3 * 24 * time.Hour) // Carl's grant has ended
		for _, j := range f.jobs.take() {
			if err := f.s.SendReminder(ctx, j.args.(appointments.ReminderArgs)); err != nil {
				t.Fatal(err)
			}
		}
		at := slot.Start.UTC().Format(time.RFC3339)
		want := []string{demo.Walter + " " + at + " Riverside Family Health (demo)", "to:acct-linda " + at + " Riverside Family Health (demo)"}
		want = append(want, want...) // a day and an hour before
		slices.Sort(want)
		got := slices.Clone(f.sent.sent)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("reminders %q, want %q", got, want)
		}
		read := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, "Person/acct-linda") && strings.Contains(e, "visit-reminder") && strings.Contains(e, "Patient/"+demo.Walter) {
				read++
			}
		}
		if read == 0 {
			t.Error("the reminder's disclosure to Linda is not on the trail")
		}
	})
}

// TestCalendarFile: the iCalendar file of a visit parses with the same
// library, with the visit's time, clinician and place, a stable UID, and
// no reason; a cancelled visit says so.
func TestCalendarFile(t *testing.T) {
	a := &appointments.Appointment{ID: "a1", Status: "booked", Start: time.Date(2026, 12, 1, 15, 30, 0, 0, time.UTC),
		End: time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC), ClinicianName: "Dr. Anika Patel", Place: "Main Street clinic",
		Reason: "A private reason", Version: "3"}
	text := appointments.CalendarText{Summary: "Visit with Dr. Anika Patel", Video: "Video visit", Note: "See it in carefront: "}
	out := appointments.Calendar(a, "portal.example", "https://portal.example/visits/a1", text, time.Now())
	cal, err := ics.ParseCalendar(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	ev := cal.Events()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	start, _ := ev[0].GetStartAt()
	end, _ := ev[0].GetEndAt()
	if !start.Equal(a.Start) || !end.Equal(a.End) || ev[0].Id() != "a1@portal.example" ||
		ev[0].GetProperty(ics.ComponentPropertySummary).Value != "Visit with Dr. Anika Patel" ||
		ev[0].GetProperty(ics.ComponentPropertyLocation).Value != "Main Street clinic" ||
		ev[0].GetProperty(ics.ComponentPropertySequence).Value != "3" || ev[0].GetProperty(ics.ComponentPropertyStatus).Value != "CONFIRMED" {
		t.Errorf("event:\n%s", out)
	}
	if strings.Contains(out, "private") {
		t.Error("the calendar file carries the reason for the visit")
	}
	a.Status, a.Video = "cancelled", true
	out = appointments.Calendar(a, "portal.example", "https://portal.example/visits/a1", text, time.Now())
	if !strings.Contains(out, "STATUS:CANCELLED") || !strings.Contains(out, "LOCATION:Video visit") || !strings.Contains(out, "\r\n") {
		t.Errorf("cancelled video visit:\n%s", out)
	}
}
