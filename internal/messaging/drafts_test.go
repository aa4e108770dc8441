package messaging_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/clinical"
	"carefront/internal/messaging"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestDrafts: a person saves what they began to write (a new message, an
// answer), finds it again, replaces it, and sending removes it; drafts are
// sealed and their author's own; someone who may not write there cannot
// save one.
func TestDrafts(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if err := f.s.SaveDraft(ctx, f.gw, f.maria, f.mariaAs, messaging.Draft{Pool: f.rivera.ID, Subject: "Knee", Text: "It started when"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.SaveDraft(ctx, f.gw, f.maria, f.mariaAs, messaging.Draft{Pool: f.rivera.ID, Subject: "Knee pain", Text: "It started on Monday"}); err != nil {
			t.Fatal(err)
		}
		dr, err := f.s.LoadDraft(ctx, "acct-maria", "maria", "")
		if err != nil || dr == nil || dr.Subject != "Knee pain" || dr.Text != "It started on Monday" || dr.Pool != f.rivera.ID {
			t.Fatalf("the draft = %+v, %v", dr, err)
		}
		var raw []byte
		if err := db.RawWriter().QueryRow("SELECT body FROM message_draft").Scan(&raw); err != nil || bytes.Contains(raw, []byte("Monday")) {
			t.Errorf("the draft is stored in the clear (%v)", err)
		}
		if other, _ := f.s.LoadDraft(ctx, "acct-sam", "maria", ""); other != nil {
			t.Error("someone else finds Maria's draft")
		}
		th, err := f.s.Start(ctx, f.gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, dr.Subject, dr.Text)
		if err != nil {
			t.Fatal(err)
		}
		if dr, _ := f.s.LoadDraft(ctx, "acct-maria", "maria", ""); dr != nil {
			t.Error("the draft outlived the message it became")
		}
		if err := f.s.SaveDraft(ctx, f.gw, f.drRivera, f.riveraAs, messaging.Draft{Thread: th.ID, Text: "Please come"}); err != nil {
			t.Fatal(err)
		}
		if dr, _ := f.s.LoadDraft(ctx, "acct-rivera", "maria", th.ID); dr == nil || dr.Text != "Please come" {
			t.Fatalf("Dr. Rivera's answer draft = %+v", dr)
		}
		if _, err := f.s.Send(ctx, f.gw, f.drRivera, f.riveraAs, th.ID, "Please come on Friday."); err != nil {
			t.Fatal(err)
		}
		if dr, _ := f.s.LoadDraft(ctx, "acct-rivera", "maria", th.ID); dr != nil {
			t.Error("the answer's draft outlived the answer")
		}
		noMessages := clinical.Request{Principal: access.Principal{User: "RelatedPerson/dana", Patient: "maria", Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g1", Kinds: []string{"MedicationRequest"}, Until: time.Now().Add(time.Hour)}}}
		for name, tc := range map[string]struct {
			req clinical.Request
			dr  messaging.Draft
		}{
			"Sam, in Maria's thread":              {f.sam, messaging.Draft{Thread: th.ID, Text: "x"}},
			"billing, in Rivera's thread":         {f.clerk, messaging.Draft{Thread: th.ID, Text: "x"}},
			"a caregiver without messages, a new": {noMessages, messaging.Draft{Pool: f.billing.ID, Text: "x"}},
		} {
			if err := f.s.SaveDraft(ctx, f.gw, tc.req, messaging.Author{Account: "acct-dana", Kind: messaging.ByCaregiver}, tc.dr); !errors.Is(err, messaging.ErrNoThread) {
				t.Errorf("%s: %v, want ErrNoThread", name, err)
			}
		}
		var n int
		db.RawWriter().QueryRow("SELECT COUNT(*) FROM message_draft").Scan(&n)
		if n != 0 {
			t.Errorf("%d drafts left", n)
		}
	})
}
