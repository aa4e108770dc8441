package messaging_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/messaging"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// fixture is a messaging store with a real gateway in front of an empty
// clinical store, two pools (Rivera's team, answered by Dr. Rivera;
// Billing, answered by support staff) and the people who use them.
type fixture struct {
	s                 *messaging.Store
	gw                *clinical.Gateway
	rivera, billing   messaging.Pool
	maria, sam        clinical.Request
	drRivera, clerk   clinical.Request
	mariaAs, riveraAs messaging.Author
}

func newFixture(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	s := newStore(t, db)
	f := &fixture{s: s, gw: &clinical.Gateway{Source: store.New(db), Audit: s.Audit, Policies: &access.Store{DB: db}, Now: db.Now}}
	r, err := s.AddPool(ctx, messaging.NewPool{Name: "Dr. Rivera's team", ResponseTime: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddPool(ctx, messaging.NewPool{Name: "Billing", ResponseTime: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ pool, email string }{{r.ID, "rivera@clinic.example"}, {b.ID, "billing@clinic.example"}} {
		if err := s.AddMember(ctx, m.pool, m.email, ""); err != nil {
			t.Fatal(err)
		}
	}
	f.rivera, f.billing = *r, *b
	f.maria = clinical.Request{Principal: access.Principal{User: "Patient/maria", Patient: "maria"}}
	f.sam = clinical.Request{Principal: access.Principal{User: "Patient/sam", Patient: "sam"}}
	f.drRivera = clinical.Request{Principal: access.Principal{User: "Person/acct-rivera", Role: access.RoleClinician, Name: "Dr. Ana Rivera", Pools: []string{r.ID}}}
	f.clerk = clinical.Request{Principal: access.Principal{User: "Person/acct-billing", Role: access.RoleSupport, Name: "Lee Clerk", Pools: []string{b.ID}}}
	f.mariaAs = messaging.Author{Account: "acct-maria", Kind: messaging.ByPatient}
	f.riveraAs = messaging.Author{Account: "acct-rivera", Kind: messaging.ByStaff, Name: "Dr. Ana Rivera"}
	return f
}

func (f *fixture) pools() []messaging.Pool { return []messaging.Pool{f.rivera, f.billing} }

// TestAConversation: Maria writes to her clinician's team, Dr. Rivera
// reads it (Maria then sees it was read) and answers, signed with his
// name; Maria reads the answer. The text is sealed at rest, and every step
// is in the audit trail with the patient as subject.
func TestAConversation(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const question = "My knee still hurts after the new dose. Should I keep taking it?"
		th, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Knee pain", question)
		if err != nil {
			t.Fatal(err)
		}
		if th.PoolName != "Dr. Rivera's team" || th.ResponseTime != 48*time.Hour || len(th.Messages) != 1 {
			t.Fatalf("thread = %+v", th)
		}
		// Sealed at rest: neither the subject nor the text is in the tables.
		var body, subject []byte
		if err := db.RawWriter().QueryRow("SELECT m.body, t.subject FROM message m JOIN message_thread t ON t.id = m.thread_id").Scan(&body, &subject); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(body, []byte("knee")) || bytes.Contains(subject, []byte("Knee")) {
			t.Error("message text or subject stored in the clear")
		}

		inbox, err := f.s.Inbox(ctx, f.gw, f.drRivera)
		if err != nil || len(inbox) != 1 || inbox[0].Unread != 1 || inbox[0].Subject != "Knee pain" {
			t.Fatalf("Dr. Rivera's inbox = %+v, %v", inbox, err)
		}
		if other, err := f.s.Inbox(ctx, f.gw, f.clerk); err != nil || len(other) != 0 {
			t.Errorf("billing's inbox = %+v, %v; want nothing", other, err)
		}
		opened, err := f.s.Thread(ctx, f.gw, f.drRivera, th.ID)
		if err != nil || len(opened.Messages) != 1 || opened.Messages[0].Text != question || opened.Messages[0].ReadAt.IsZero() {
			t.Fatalf("Dr. Rivera opens it: %+v, %v", opened, err)
		}
		if _, err := f.s.Send(ctx, f.gw, f.drRivera, f.riveraAs, th.ID, "Keep taking it; let's talk on Friday."); err != nil {
			t.Fatal(err)
		}

		list, err := f.s.Threads(ctx, f.gw, f.maria)
		if err != nil || len(list) != 1 || list[0].Unread != 1 {
			t.Fatalf("Maria's threads = %+v, %v", list, err)
		}
		mine, err := f.s.Thread(ctx, f.gw, f.maria, th.ID)
		if err != nil || len(mine.Messages) != 2 {
			t.Fatalf("Maria opens it: %+v, %v", mine, err)
		}
		q, a := mine.Messages[0], mine.Messages[1]
		if q.ReadAt.IsZero() || a.AuthorName != "Dr. Ana Rivera" || a.AuthorKind != messaging.ByStaff || a.ReadAt.IsZero() {
			t.Errorf("Maria sees %+v and %+v: want her message read by the team and the answer signed", q, a)
		}
		if list, _ := f.s.Threads(ctx, f.gw, f.maria); list[0].Unread != 0 {
			t.Errorf("after reading, %d unread", list[0].Unread)
		}

		// Audit: Maria's message and Dr. Rivera's answer created, his
		// opening of the thread read, each naming Maria as the patient;
		// no text anywhere.
		var created, staffRead int
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, "knee") || strings.Contains(e, "Friday") || strings.Contains(e, "Knee pain") {
				t.Fatal("message text in the audit trail")
			}
			if !strings.Contains(e, "Patient/maria") {
				continue
			}
			if strings.Contains(e, `"create"`) {
				created++
			}
			if strings.Contains(e, `"read"`) && strings.Contains(e, "Dr. Ana Rivera") && strings.Contains(e, "clinician") {
				staffRead++
			}
		}
		if created != 2 || staffRead != 1 {
			t.Errorf("audit: %d messages created, %d openings by Dr. Rivera; want 2 and 1", created, staffRead)
		}
	})
}

// TestOtherPeoplesThreads: another patient, a staff member of another pool
// and a caregiver without messages in their grant cannot read, list or
// write to Maria's thread: it answers as a missing one, nothing changes,
// and each refusal is audited with its reason.
func TestOtherPeoplesThreads(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		th, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Knee pain", "Still hurts.")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		noMessages := clinical.Request{Principal: access.Principal{User: "RelatedPerson/dana", Patient: "maria", Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g1", Kinds: []string{"MedicationRequest"}, Until: now.Add(24 * time.Hour)}}}
		samAs := messaging.Author{Account: "acct-sam", Kind: messaging.ByPatient}
		for name, req := range map[string]clinical.Request{"Sam": f.sam, "billing": f.clerk, "a caregiver without messages": noMessages} {
			if _, err := f.s.Thread(ctx, f.gw, req, th.ID); !errors.Is(err, messaging.ErrNoThread) {
				t.Errorf("%s opens Maria's thread: %v, want ErrNoThread", name, err)
			}
			who := samAs
			if req.Principal.Role != "" {
				who = messaging.Author{Account: "acct-billing", Kind: messaging.ByStaff, Name: "Lee Clerk"}
			}
			if _, err := f.s.Send(ctx, f.gw, req, who, th.ID, "Let me in"); !errors.Is(err, messaging.ErrNoThread) {
				t.Errorf("%s writes to Maria's thread: %v, want ErrNoThread", name, err)
			}
		}
		if _, err := f.s.Thread(ctx, f.gw, f.maria, "no-such-thread"); !errors.Is(err, messaging.ErrNoThread) {
			t.Errorf("a thread that does not exist: %v", err)
		}
		if list, err := f.s.Threads(ctx, f.gw, f.sam); err != nil || len(list) != 0 {
			t.Errorf("Sam's threads = %+v, %v; want none", list, err)
		}
		if _, err := f.s.Threads(ctx, f.gw, noMessages); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("the caregiver lists Maria's messages: %v, want Forbidden", err)
		}
		mine, err := f.s.Thread(ctx, f.gw, f.maria, th.ID)
		if err != nil || len(mine.Messages) != 1 {
			t.Fatalf("after the refusals Maria's thread has %d messages (%v), want 1", len(mine.Messages), err)
		}
		refused := 0
		for _, e := range audittest.Events(t, db) {
			for _, why := range []string{access.ReasonOtherPatient, access.ReasonStaffRole, access.ReasonProxyKind} {
				if strings.Contains(e, `"`+why+`"`) {
					refused++
				}
			}
		}
		if refused < 6 {
			t.Errorf("%d refusals audited with their reason, want at least 6", refused)
		}
	})
}

// TestCaregiverWritesWithMessagesInTheirGrant: a caregiver whose grant
// holds messages writes on the patient's behalf, and the message says so.
func TestCaregiverWritesWithMessagesInTheirGrant(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		types, _ := access.KindTypes([]string{"messages"})
		dana := clinical.Request{Principal: access.Principal{User: "RelatedPerson/dana", Patient: "maria", Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g1", Kinds: types, Until: time.Now().Add(24 * time.Hour)}}}
		th, err := f.s.Start(ctx, f.gw, dana, messaging.Author{Account: "acct-dana", Kind: messaging.ByCaregiver}, f.pools(), f.billing.ID, "Bill", "A question about the March bill.")
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.s.Thread(ctx, f.gw, f.clerk, th.ID)
		if err != nil || got.Messages[0].AuthorKind != messaging.ByCaregiver || got.Patient != "maria" {
			t.Fatalf("billing opens the caregiver's thread: %+v, %v", got, err)
		}
		onBehalf := false
		for _, e := range audittest.Events(t, db) {
			onBehalf = onBehalf || strings.Contains(e, `"create"`) && strings.Contains(e, "RelatedPerson/dana") && strings.Contains(e, "Patient/maria")
		}
		if !onBehalf {
			t.Error("no audit record of the caregiver's message on Maria's behalf")
		}
	})
}

// TestBadMessages: an empty or overlong message, a missing or overlong
// subject, control characters and a pool not offered are refused with a
// clear message, and nothing is written.
func TestBadMessages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		for _, tc := range []struct {
			name, pool, subject, text, want string
		}{
			{"empty", f.rivera.ID, "Hello", "  \n ", "write a message"},
			{"too long", f.rivera.ID, "Hello", strings.Repeat("é", messaging.MaxText+1), "up to 10000 characters; this one has 10001"},
			{"no subject", f.rivera.ID, " ", "Hi", "give the message a subject"},
			{"long subject", f.rivera.ID, strings.Repeat("s", messaging.MaxSubject+1), "Hi", "give the message a subject"},
			{"control characters", f.rivera.ID, "Hello", "Hi\x00there", "cannot be sent"},
			{"pool not offered", "some-other-pool", "Hello", "Hi", "choose who to write to"},
		} {
			_, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), tc.pool, tc.subject, tc.text)
			if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), tc.want) {
				t.Errorf("%s: %v, want Invalid with %q", tc.name, err, tc.want)
			}
		}
		if _, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Hello", strings.Repeat("é", messaging.MaxText)); err != nil {
			t.Errorf("a message of exactly %d characters: %v", messaging.MaxText, err)
		}
		var n int
		if err := db.RawWriter().QueryRow("SELECT COUNT(*) FROM message").Scan(&n); err != nil || n != 1 {
			t.Errorf("%d messages written (%v), want only the valid one", n, err)
		}
	})
}

// notices records the notices queued, as identity's would be.
type notices struct{ sent []string }

func (n *notices) QueueNotice(_ context.Context, _ *sqldb.Tx, account, event string) error {
	n.sent = append(n.sent, "account "+account+" "+event)
	return nil
}

func (n *notices) QueuePatientNotice(_ context.Context, _ *sqldb.Tx, patient, event string) error {
	n.sent = append(n.sent, "patient "+patient+" "+event)
	return nil
}

// TestNoticesOfNewMessages: a message from the patient's side is told to
// the members of the thread's pool (and no one else); an answer is told to
// the patient and to the caregiver who wrote in the thread; a refused
// message is told to no one. Notices name no one and nothing.
func TestNoticesOfNewMessages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		n := &notices{}
		f.s.Notices = n
		types, _ := access.KindTypes([]string{"messages"})
		dana := clinical.Request{Principal: access.Principal{User: "RelatedPerson/dana", Patient: "maria", Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g1", Kinds: types, Until: time.Now().Add(24 * time.Hour)}}}
		th, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Knee", "Still hurts.")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Send(ctx, f.gw, dana, messaging.Author{Account: "acct-dana", Kind: messaging.ByCaregiver}, th.ID, "She limps too."); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Send(ctx, f.gw, f.clerk, messaging.Author{Account: "acct-billing", Kind: messaging.ByStaff, Name: "Lee Clerk"}, th.ID, "Not your pool"); err == nil {
			t.Fatal("billing wrote to Rivera's thread")
		}
		if _, err := f.s.Send(ctx, f.gw, f.drRivera, f.riveraAs, th.ID, "Come in Friday."); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"account acct-rivera message-new-staff", "account acct-rivera message-new-staff",
			"patient maria message-new", "account acct-dana message-new",
		}
		if strings.Join(n.sent, "; ") != strings.Join(want, "; ") {
			t.Errorf("notices = %q, want %q", n.sent, want)
		}
	})
}

// TestInboxClockAssignDone: the inbox puts who waits longest first, with
// when the pool's response time runs out; a member assigns a thread to
// themself and sets it aside as done; a new message from the patient opens
// it again; no one outside the pool can do either.
func TestInboxClockAssignDone(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		f := newFixture(t, db)
		f.s.Now = db.Now
		first, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "First", "One")
		if err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Hour)
		second, err := f.s.Start(ctx, f.gw, f.sam, messaging.Author{Account: "acct-sam", Kind: messaging.ByPatient}, f.pools(), f.rivera.ID, "Second", "Two")
		if err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Hour)
		if _, err := f.s.Send(ctx, f.gw, f.drRivera, f.riveraAs, second.ID, "Answered"); err != nil {
			t.Fatal(err)
		}
		inbox, err := f.s.Inbox(ctx, f.gw, f.drRivera)
		if err != nil || len(inbox) != 2 {
			t.Fatalf("inbox = %+v, %v", inbox, err)
		}
		if inbox[0].ID != first.ID || inbox[0].Waiting.IsZero() || !inbox[0].Due().Equal(inbox[0].Waiting.Add(48*time.Hour)) || !inbox[1].Waiting.IsZero() {
			t.Errorf("inbox order and clock: %+v", inbox)
		}
		for _, req := range []clinical.Request{f.clerk, f.maria} {
			if err := f.s.MarkDone(ctx, f.gw, req, first.ID); !errors.Is(err, messaging.ErrNoThread) {
				t.Errorf("%s marks Rivera's thread done: %v", req.Principal.User, err)
			}
			if err := f.s.Assign(ctx, f.gw, req, first.ID, "acct-billing"); !errors.Is(err, messaging.ErrNoThread) {
				t.Errorf("%s assigns Rivera's thread: %v", req.Principal.User, err)
			}
		}
		if err := f.s.Assign(ctx, f.gw, f.drRivera, first.ID, "acct-billing"); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("assigning to someone outside the pool: %v", err)
		}
		if err := f.s.Assign(ctx, f.gw, f.drRivera, first.ID, "acct-rivera"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.MarkDone(ctx, f.gw, f.drRivera, first.ID); err != nil {
			t.Fatal(err)
		}
		inbox, _ = f.s.Inbox(ctx, f.gw, f.drRivera)
		if inbox[1].ID != first.ID || inbox[1].Status != messaging.Done || inbox[1].AssignedTo != "acct-rivera" {
			t.Errorf("after done: %+v", inbox)
		}
		if _, err := f.s.Send(ctx, f.gw, f.maria, f.mariaAs, first.ID, "One more thing"); err != nil {
			t.Fatal(err)
		}
		inbox, _ = f.s.Inbox(ctx, f.gw, f.drRivera)
		if inbox[0].ID != first.ID || inbox[0].Status != messaging.Open {
			t.Errorf("a new message does not open the thread again: %+v", inbox)
		}
	})
}
