package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/notify"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestNoticePrefsChooseChannelsAndLanguage: a person who chose Spanish
// and text messages for new messages gets the Spanish half by email and a
// text message; one who turned email off for messages gets none; security
// notices still go by email (never turned off) but never carry a code by
// text message. The number is sealed, and saving is audited.
func TestNoticePrefsChooseChannelsAndLanguage(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, maria := setup(t, db)
		ctx := context.Background()
		auth := &identity.Auth{Store: s, Audit: auditWriter(t, db)}
		outbox := withMail(t, db, auth)
		auth.SMS = outbox

		p := identity.DefaultNoticePrefs()
		p.Lang, p.Phone = "es", "(555) 555-0142"
		p.SMS[identity.NoticeMessages], p.SMS[identity.NoticeSecurity] = true, true
		p.Email[identity.NoticeSecurity] = false // not honoured: security mail always goes
		if err := auth.SetNoticePrefs(ctx, maria, p, "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		got, err := s.NoticePrefs(ctx, maria.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Phone != "+15555550142" || got.Lang != "es" || !got.SMS[identity.NoticeMessages] || got.SMS[identity.NoticeVisits] ||
			!got.Email[identity.NoticeSecurity] || !got.Email[identity.NoticeVisits] {
			t.Fatalf("saved preferences = %+v", got)
		}
		var sealed []byte
		db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT phone FROM notice_pref WHERE account_id = ?", maria.ID).Scan(&sealed)
		})
		if strings.Contains(string(sealed), "5555550142") {
			t.Error("the mobile number is stored in the clear")
		}
		if r := auditReasons(t, db); len(r) == 0 || r[len(r)-1] != "notice-preferences-changed" {
			t.Errorf("audit reasons = %v", r)
		}

		queue := func(event string) {
			t.Helper()
			if err := db.Write(ctx, func(tx *sqldb.Tx) error { return auth.QueueNotice(ctx, tx, maria.ID, event) }); err != nil {
				t.Fatal(err)
			}
		}
		queue("message-new")
		queue("password-changed")
		if err := auth.SendEmailCode(ctx, maria, "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		msgs := settle(t, db, outbox)
		var emails, texts []notify.Message
		for _, m := range msgs {
			if m.Subject == "Text message" {
				texts = append(texts, m)
			} else {
				emails = append(emails, m)
			}
		}
		if len(emails) != 3 || len(texts) != 2 {
			t.Fatalf("%d emails and %d text messages, want 3 and 2: %+v", len(emails), len(texts), msgs)
		}
		for _, m := range emails {
			if strings.Contains(m.Subject+m.Text, "carefront portal. Sign in") || strings.Contains(m.Text, "Your carefront") || !strings.Contains(m.Text+m.Subject, "carefront") {
				t.Errorf("email not in Spanish only: %q %q", m.Subject, m.Text)
			}
		}
		for _, m := range texts {
			if m.To != "+15555550142" || m.Text == "" || strings.ContainsAny(m.Text, "0123456789") {
				t.Errorf("text message %+v: want the subject only, to the number, no code", m)
			}
		}

		// Email off for messages, no text messages: a new message notice
		// reaches nobody; security notices still come.
		p = identity.DefaultNoticePrefs()
		p.Email[identity.NoticeMessages] = false
		if err := auth.SetNoticePrefs(ctx, maria, p, "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		before := len(outbox.Messages())
		queue("message-new")
		queue("factor-added")
		msgs = settle(t, db, outbox)
		if len(msgs) != before+1 || !strings.Contains(msgs[0].Subject, "sign-in method") || !strings.Contains(msgs[0].Subject, " / ") {
			t.Errorf("after turning message email off: %d new, newest %q; want only the bilingual security notice", len(msgs)-before, msgs[0].Subject)
		}
	})
}

// TestQuietHoursDeferNotices: a message notice queued in the person's
// quiet hours is sent when they end, not before and not dropped; a
// security notice at the same moment goes at once.
func TestQuietHoursDeferNotices(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, clock, maria := setup(t, db)
		ctx := context.Background()
		auth := &identity.Auth{Store: s, Audit: auditWriter(t, db)}
		outbox := withMail(t, db, auth)
		// The clock reads 10:00 UTC; quiet hours run to 10:00 in a zone
		// where it is 09:59:58 now, so they end in two seconds.
		auth.Zone = time.FixedZone("clinic", -2)
		p := identity.DefaultNoticePrefs()
		p.QuietFrom, p.QuietTo = 22*60, 10*60 // across midnight
		if err := auth.SetNoticePrefs(ctx, maria, p, "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		queued := time.Now()
		for _, e := range []string{"message-new", "locked"} {
			if err := db.Write(ctx, func(tx *sqldb.Tx) error { return auth.QueueNotice(ctx, tx, maria.ID, e) }); err != nil {
				t.Fatal(err)
			}
		}
		first := outbox.Await(context.Background(), 1)
		waitCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		early := outbox.Await(waitCtx, 2)
		cancel()
		if len(first) != 1 || !strings.Contains(first[0].Subject, "locked") || len(early) != 1 {
			t.Fatalf("at once: %d notices (%v); want only the security notice", len(early), early)
		}
		clock.Add(time.Hour) // the database's clock does not move River's
		msgs := settle(t, db, outbox)
		if len(msgs) != 2 || !strings.Contains(msgs[0].Subject, "new message") {
			t.Fatalf("after the quiet hours: %+v", msgs)
		}
		if waited := msgs[0].Sent.Sub(queued); waited < 1500*time.Millisecond {
			t.Errorf("the deferred notice went after %v, before the quiet hours ended", waited)
		}
	})
}

// TestNoticePrefsRefuseBadInput: a bad number, a language or kind that
// does not exist, text messages with no number, a time out of range:
// refused beside their field, and nothing saved.
func TestNoticePrefsRefuseBadInput(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, maria := setup(t, db)
		ctx := context.Background()
		auth := &identity.Auth{Store: s, Audit: auditWriter(t, db)}
		for name, tc := range map[string]struct {
			change func(*identity.NoticePrefs)
			field  string
		}{
			"letters in the number": {func(p *identity.NoticePrefs) { p.Phone = "555-CALL-NOW" }, "phone"},
			"too short a number":    {func(p *identity.NoticePrefs) { p.Phone = "555 0142" }, "phone"},
			"too long a number":     {func(p *identity.NoticePrefs) { p.Phone = "+1234567890123456" }, "phone"},
			"text with no number":   {func(p *identity.NoticePrefs) { p.SMS[identity.NoticeVisits] = true }, "phone"},
			"a language":            {func(p *identity.NoticePrefs) { p.Lang = "fr" }, "lang"},
			"a kind":                {func(p *identity.NoticePrefs) { p.Email["marketing"] = true }, "email"},
			"a time":                {func(p *identity.NoticePrefs) { p.QuietTo = 24 * 60 }, "quiet"},
		} {
			p := identity.DefaultNoticePrefs()
			tc.change(&p)
			err := auth.SetNoticePrefs(ctx, maria, p, "192.0.2.1", "")
			var pe *apperr.FieldError
			if !errors.As(err, &pe) || pe.Field != tc.field || apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("%s: err = %v, want a field error for %s", name, err, tc.field)
			}
		}
		var n int
		db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM notice_pref").Scan(&n)
		})
		if n != 0 {
			t.Errorf("%d preferences saved from bad input", n)
		}
		for in, want := range map[string]string{"+44 20 7946 0958": "+442079460958", "1-555-555-0142": "+15555550142", "555.555.0142": "+15555550142"} {
			if got, err := identity.ParsePhone(in); err != nil || got != want {
				t.Errorf("ParsePhone(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
}

// TestEveryMailHasBothLanguages: every template splits into an English
// and a Spanish half, and a code or link is in both halves.
func TestEveryMailHasBothLanguages(t *testing.T) {
	for _, tpl := range identity.MailTemplates() {
		for _, lang := range []string{"en", "es"} {
			m, ok := identity.ComposeForTest(tpl, "482913", "https://portal.example/x", lang)
			if !ok {
				t.Fatalf("%s: no template", tpl)
			}
			if strings.Contains(m.Subject, " / ") || m.Subject == "" || m.Text == "" || strings.Contains(m.Text, "\n\n") {
				t.Errorf("%s in %s: subject %q, text %q: not one language", tpl, lang, m.Subject, m.Text)
			}
			spanish := strings.ContainsAny(m.Text, "áéíóúñ¿") || strings.Contains(m.Text, " de ")
			if spanish != (lang == "es") {
				t.Errorf("%s in %s: text %q", tpl, lang, m.Text)
			}
			full, _ := identity.ComposeForTest(tpl, "482913", "https://portal.example/x", "")
			for _, secret := range []string{"482913", "https://portal.example/x"} {
				if strings.Contains(full.Text, secret) && !strings.Contains(m.Text, secret) {
					t.Errorf("%s in %s lacks %s", tpl, lang, secret)
				}
			}
		}
	}
}
