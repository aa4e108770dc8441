package consent

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"carefront/internal/audit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// notices records the notices queued, as "event to who".
type notices struct {
	mu   sync.Mutex
	sent []string
}

func (n *notices) QueueInvitation(context.Context, *sqldb.Tx, string, string) error { return nil }
func (n *notices) QueueNotice(_ context.Context, _ *sqldb.Tx, account, event string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, event+" to "+account)
	return nil
}
func (n *notices) QueuePatientNotice(_ context.Context, _ *sqldb.Tx, patient, event string) error {
	return n.QueueNotice(context.Background(), nil, "patient "+patient, event)
}
func (n *notices) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.sent
	n.sent = nil
	slices.Sort(out)
	return out
}

// TestComingOfAgeNotices: 30 days before a parent's grant ends at the
// child's coming of age, the parent and the child are told, once, even
// when several processes look at the same time; grants that end sooner
// anyway, an adult patient's own grant and revoked grants are not
// noticed. At the birthday the grant ends, whatever its last day.
func TestComingOfAgeNotices(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		now := clock.Now()
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		t.Cleanup(func() { aw.Close(ctx) })
		mail := &notices{}
		gs := &Grants{DB: db, Audit: aw, Mail: mail}
		// born returns a date of birth whose 18th birthday is in days.
		born := func(days int) time.Time {
			d := now.AddDate(-18, 0, days)
			return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
		}
		grant := func(patient string, birth time.Time, until time.Time, parent ...string) *Grant {
			t.Helper()
			who := patient + "-parent"
			if len(parent) > 0 {
				who = parent[0]
			}
			email := who + "@example.com"
			if err := db.Write(ctx, func(tx *sqldb.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, created) VALUES (?, 'person', ?, 0)", "acct-"+who, email)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			g, err := gs.Grant(ctx, NewGrant{Patient: patient, Email: email, Preset: "full", Until: until, PatientBirth: birth, By: "carefront-cli"})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		grant("ana", born(20), now.AddDate(2, 0, 0))
		grant("ana", born(20), now.AddDate(2, 0, 0), "ana-other-parent")
		if err := db.Write(ctx, func(tx *sqldb.Tx) error { // Ana has her own account
			_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, patient_id, created) VALUES ('acct-ana', 'person', 'ana@example.com', 'ana', 0)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		grant("ben", born(40), now.AddDate(2, 0, 0))
		grant("cal", born(20), now.AddDate(0, 0, 10)) // ends in 10 days anyway
		grant("dee", born(20-365*30), now.AddDate(1, 0, 0))
		revoked := grant("eve", born(15), now.AddDate(1, 0, 0))
		if _, err := gs.Revoke(ctx, Revocation{ID: revoked.ID, By: "carefront-cli"}); err != nil {
			t.Fatal(err)
		}

		var wg sync.WaitGroup
		counts := make([]int, 3)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := gs.NoticeComingOfAge(ctx)
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			}()
		}
		wg.Wait()
		want := []string{NoticeAdultCaregiver + " to acct-ana-other-parent", NoticeAdultCaregiver + " to acct-ana-parent", NoticeAdultPatient + " to patient ana"}
		if got := mail.take(); !slices.Equal(got, want) || counts[0]+counts[1]+counts[2] != 2 {
			t.Errorf("notices %v (told %v), want %v once", got, counts, want)
		}
		if n, _ := gs.NoticeComingOfAge(ctx); n != 0 || len(mail.take()) != 0 {
			t.Error("a grant was noticed twice")
		}

		clock.Add(11 * 24 * time.Hour) // Ben's birthday is now 29 days away
		if n, err := gs.NoticeComingOfAge(ctx); n != 1 || err != nil {
			t.Errorf("11 days on: told %d, %v", n, err)
		}
		if got := mail.take(); !slices.Equal(got, []string{NoticeAdultCaregiver + " to acct-ben-parent", NoticeAdultPatient + " to patient ben"}) {
			t.Errorf("11 days on: %v", got)
		}

		// On her 18th birthday Ana's parent's grant has ended.
		birthday := born(20).AddDate(18, 0, 0)
		clock.Add(birthday.Sub(clock.Now()) - time.Second)
		list := func(p string) []Grant {
			l, err := gs.List(ctx, p)
			if err != nil || len(l) == 0 {
				t.Fatalf("List(%s) = %v, %v", p, l, err)
			}
			return l
		}
		if g := list("ana")[0]; !g.Active(clock.Now()) || !g.End().Equal(birthday) {
			t.Errorf("the second before her birthday: active %v, end %v", g.Active(clock.Now()), g.End())
		}
		clock.Add(time.Second)
		if g := list("ana")[0]; g.Active(clock.Now()) || !g.Proxy().Ended(clock.Now()) {
			t.Errorf("on her birthday the grant is still active (ends %v, now %v)", g.End(), clock.Now())
		}
	})
}
