package messaging_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"carefront/internal/messaging"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func TestOfficeHours(t *testing.T) {
	chicago, _ := time.LoadLocation("America/Chicago")
	h, err := messaging.ParseOfficeHours("Mon-Fri 08:00-17:00, Sat 09:00-12:00", chicago)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, chicago)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		now  string
		open bool
		next string
	}{
		{"2026-11-30 08:00", true, "2026-11-30 08:00"},  // Monday opening
		{"2026-11-30 16:59", true, "2026-11-30 16:59"},  // just before closing
		{"2026-11-30 17:00", false, "2026-12-01 08:00"}, // closing: next morning
		{"2026-12-04 18:30", false, "2026-12-05 09:00"}, // Friday evening: Saturday
		{"2026-12-05 12:30", false, "2026-12-07 08:00"}, // Saturday afternoon: Monday
		{"2026-12-06 03:00", false, "2026-12-07 08:00"}, // Sunday night
		{"2026-11-30 07:59", false, "2026-11-30 08:00"}, // before opening
	} {
		now := at(tc.now)
		if got := h.Open(now); got != tc.open {
			t.Errorf("Open(%s) = %v", tc.now, got)
		}
		if got := h.Next(now); !got.Equal(at(tc.next)) {
			t.Errorf("Next(%s) = %s, want %s", tc.now, got.In(chicago), tc.next)
		}
	}
	// The same instant in UTC is judged in the clinic's zone.
	if !h.Open(at("2026-11-30 09:00").UTC()) {
		t.Error("an instant given in UTC is not judged in the clinic's time zone")
	}
	always, err := messaging.ParseOfficeHours("always", chicago)
	if err != nil || !always.Open(at("2026-12-06 03:00")) {
		t.Errorf("always: %v", err)
	}
	for _, bad := range []string{"", "Mon-Fri", "Mon-Fri 8-17", "Mon-Fri 17:00-08:00", "Funday 08:00-17:00", "Mon-Fri 08:00-25:00", "Mon-Fri 08:00 17:00", "Mon-Fri 08:00-17:00,"} {
		if _, err := messaging.ParseOfficeHours(bad, chicago); err == nil {
			t.Errorf("ParseOfficeHours(%q) accepted", bad)
		}
	}
}

// TestOfficeHoursReply: a message written outside office hours gets one
// automatic reply saying when it will be read (in English and Spanish),
// until the team answers; inside office hours, none; the thread still
// waits for the team's answer; the patient is not notified of it.
func TestOfficeHoursReply(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		f := newFixture(t, db)
		n := &notices{}
		f.s.Now, f.s.Notices = db.Now, n
		var err error
		if f.s.Hours, err = messaging.ParseOfficeHours("Mon-Fri 08:00-17:00", time.UTC); err != nil {
			t.Fatal(err)
		}
		for clock.Now().Weekday() != time.Saturday {
			clock.Add(24 * time.Hour)
		}
		th, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Weekend", "It hurts on Saturday.")
		if err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Minute)
		if _, err := f.s.Send(ctx, f.gw, f.maria, f.mariaAs, th.ID, "And still."); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.Thread(ctx, f.gw, f.maria, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		var auto []messaging.Message
		for _, m := range got.Messages {
			if m.AuthorKind == messaging.ByCarefront {
				auto = append(auto, m)
			}
		}
		if len(got.Messages) != 3 || len(auto) != 1 || got.Messages[1].AuthorKind != messaging.ByCarefront {
			t.Fatalf("messages = %+v; want the first, one automatic reply, the second", got.Messages)
		}
		for _, want := range []string{"will be read from Monday", "at 8:00 AM (UTC time)", "se leerá a partir del lunes", "call 911", "llame al 911", "Dr. Rivera's team"} {
			if !strings.Contains(auto[0].Text, want) {
				t.Errorf("the automatic reply lacks %q:\n%s", want, auto[0].Text)
			}
		}
		for _, s := range n.sent {
			if strings.HasPrefix(s, "patient maria") {
				t.Errorf("Maria was notified of the automatic reply: %v", n.sent)
			}
		}
		inbox, _ := f.s.Inbox(ctx, f.gw, f.drRivera)
		if len(inbox) != 1 || inbox[0].Waiting.IsZero() {
			t.Errorf("after the automatic reply the thread does not wait for the team: %+v", inbox)
		}
		// The team answers; on Monday at 9 a new message gets no reply.
		if _, err := f.s.Send(ctx, f.gw, f.drRivera, f.riveraAs, th.ID, "We will call you."); err != nil {
			t.Fatal(err)
		}
		for clock.Now().Weekday() != time.Monday {
			clock.Add(24 * time.Hour)
		}
		now := clock.Now()
		clock.Add(time.Date(now.Year(), now.Month(), now.Day(), 9, 0, 0, 0, time.UTC).Sub(now))
		if _, err := f.s.Send(ctx, f.gw, f.maria, f.mariaAs, th.ID, "Thanks."); err != nil {
			t.Fatal(err)
		}
		got, _ = f.s.Thread(ctx, f.gw, f.maria, th.ID)
		if last := got.Messages[len(got.Messages)-1]; last.AuthorKind != messaging.ByPatient || len(got.Messages) != 5 {
			t.Errorf("inside office hours: %d messages, the last by %s", len(got.Messages), last.AuthorKind)
		}
	})
}
