package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// NoticeKind is a group of notices a person picks channels for.
type NoticeKind string

const (
	// NoticeSecurity: sign-in codes, password links, security and sharing
	// notices. Always by email (text messages may be added) and never held
	// back by quiet hours: they are what a person needs to act on at once.
	NoticeSecurity NoticeKind = "security"
	NoticeMessages NoticeKind = "messages" // a new message in the portal
	NoticeVisits   NoticeKind = "visits"   // visit reminders and changes
	NoticeRequests NoticeKind = "requests" // refill and correction requests answered
)

// NoticeKinds are the kinds, in the order the settings page lists them.
var NoticeKinds = []NoticeKind{NoticeMessages, NoticeVisits, NoticeRequests, NoticeSecurity}

// NoticeLangs are the languages notices are written in; "" writes both.
var NoticeLangs = []string{"", "en", "es"}

// noticeKindOf is the kind of a mail template.
func noticeKindOf(template string) NoticeKind {
	switch {
	case strings.HasPrefix(template, "message-"):
		return NoticeMessages
	case strings.HasPrefix(template, "visit-"):
		return NoticeVisits
	case strings.HasPrefix(template, "request-"):
		return NoticeRequests
	}
	return NoticeSecurity
}

// NoticePrefs is how a person wants to hear from carefront.
type NoticePrefs struct {
	Lang  string // "en", "es", or "" for both
	Email map[NoticeKind]bool
	SMS   map[NoticeKind]bool
	Phone string // E.164 ("+15555550123"); needed for text messages
	// QuietFrom and QuietTo bound the quiet hours, in minutes after
	// midnight in the clinic's time zone; equal means none. Notices other
	// than security ones that fall in them wait until they end.
	QuietFrom, QuietTo int
}

// DefaultNoticePrefs: email for every kind, no text messages, no quiet
// hours, both languages.
func DefaultNoticePrefs() NoticePrefs {
	p := NoticePrefs{Email: map[NoticeKind]bool{}, SMS: map[NoticeKind]bool{}}
	for _, k := range NoticeKinds {
		p.Email[k] = true
	}
	return p
}

// Channels reports where a notice of kind goes.
func (p NoticePrefs) Channels(kind NoticeKind) (email, sms bool) {
	email = p.Email[kind] || kind == NoticeSecurity
	sms = p.SMS[kind] && p.Phone != ""
	return email, sms
}

// QuietFor is how long a notice of kind sent at now waits: until the
// person's quiet hours end, or 0. Security notices never wait.
func (p NoticePrefs) QuietFor(kind NoticeKind, now time.Time, loc *time.Location) time.Duration {
	if kind == NoticeSecurity || p.QuietFrom == p.QuietTo {
		return 0
	}
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	at := func(day, minutes int) time.Time {
		d := midnight.AddDate(0, 0, day)
		return time.Date(d.Year(), d.Month(), d.Day(), minutes/60, minutes%60, 0, 0, loc)
	}
	// A span may cross midnight (22:00 to 07:00): look at the one that
	// began yesterday and the one that begins today.
	for _, day := range []int{-1, 0} {
		from, to := at(day, p.QuietFrom), at(day, p.QuietTo)
		if !to.After(from) {
			to = at(day+1, p.QuietTo)
		}
		if !t.Before(from) && t.Before(to) {
			return to.Sub(t)
		}
	}
	return 0
}

// prefsError is a setting that cannot be saved, with the field it
// belongs beside.
func prefsError(field, code, msg string) error {
	return apperr.NewField(apperr.Invalid, field, "notices."+code, "%s", msg)
}

// ParsePhone reads a mobile number as people write it, with spaces,
// dashes, dots or brackets: in international form (+ and 8 to 15 digits),
// or 10 digits, taken as a North American number. It returns E.164.
func ParsePhone(s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case strings.ContainsRune(" -.()", r):
		default:
			return "", prefsError("phone", "phone-bad", "write the mobile number with digits only, like +1 555 555 0123")
		}
	}
	n := b.String()
	if !strings.HasPrefix(n, "+") {
		if len(n) == 11 && n[0] == '1' {
			n = n[1:]
		}
		if len(n) != 10 {
			return "", prefsError("phone", "phone-bad", "write the mobile number with its area code, like 555 555 0123, or with + and the country code")
		}
		n = "+1" + n
	}
	if d := len(n) - 1; d < 8 || d > 15 || n[1] == '0' {
		return "", prefsError("phone", "phone-bad", "write the mobile number with + and the country code, like +1 555 555 0123")
	}
	return n, nil
}

// ParseClock reads "HH:MM" (24 hours) as minutes after midnight.
func ParseClock(field, s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, prefsError(field, "clock-bad", "write a time like 21:30")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// CheckNoticePrefs validates preferences without saving them (a form
// with another problem of its own shows every problem at once); it
// writes the number as E.164.
func CheckNoticePrefs(p *NoticePrefs) error { return p.check() }

// check validates the preferences, joining every problem.
func (p *NoticePrefs) check() error {
	var errs []error
	if !slices.Contains(NoticeLangs, p.Lang) {
		errs = append(errs, prefsError("lang", "lang-bad", "choose English, Spanish, or both"))
	}
	for k := range p.Email {
		if !slices.Contains(NoticeKinds, k) {
			errs = append(errs, prefsError("email", "kind-bad", "that kind of notice does not exist"))
		}
	}
	for k, on := range p.SMS {
		if !slices.Contains(NoticeKinds, k) {
			errs = append(errs, prefsError("sms", "kind-bad", "that kind of notice does not exist"))
		}
		if on && p.Phone == "" {
			errs = append(errs, prefsError("phone", "phone-missing", "add a mobile number to get text messages, or turn them off"))
			break
		}
	}
	if p.Phone != "" {
		n, err := ParsePhone(p.Phone)
		if err != nil {
			errs = append(errs, err)
		}
		p.Phone = n
	}
	if p.QuietFrom < 0 || p.QuietFrom >= 24*60 || p.QuietTo < 0 || p.QuietTo >= 24*60 {
		errs = append(errs, prefsError("quiet", "clock-bad", "write a time like 21:30"))
	}
	return errors.Join(errs...)
}

func phoneBinding(accountID string) seal.Binding {
	return seal.Binding{Table: "notice_pref", Column: "phone", Row: accountID}
}

func kindList(m map[NoticeKind]bool, want bool) string {
	var ks []string
	for _, k := range NoticeKinds {
		if m[k] == want {
			ks = append(ks, string(k))
		}
	}
	return strings.Join(ks, ",")
}

// NoticePrefs reads an account's preferences, or the defaults.
func (s *Store) NoticePrefs(ctx context.Context, accountID string) (NoticePrefs, error) {
	p := DefaultNoticePrefs()
	var off, on string
	var phone []byte
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT lang, email_off, sms_on, phone, quiet_from, quiet_to FROM notice_pref WHERE account_id = ?", accountID).
			Scan(&p.Lang, &off, &on, &phone, &p.QuietFrom, &p.QuietTo)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	for _, k := range strings.Split(off, ",") {
		if k != "" {
			p.Email[NoticeKind(k)] = false
		}
	}
	for _, k := range strings.Split(on, ",") {
		if k != "" {
			p.SMS[NoticeKind(k)] = true
		}
	}
	if len(phone) > 0 {
		b, err := s.keys.Open(phone, phoneBinding(accountID))
		if err != nil {
			return p, fmt.Errorf("identity: notice preferences of %s: phone does not open", accountID)
		}
		p.Phone = string(b)
	}
	return p, nil
}

// SetNoticePrefs saves an account's preferences, audited as a change to
// the account (without the number). A setting that cannot be saved is a
// *PrefsError (joined, one per problem), and nothing changes.
func (a *Auth) SetNoticePrefs(ctx context.Context, acct *Account, p NoticePrefs, addr, sessionHex string) error {
	if err := p.check(); err != nil {
		return err
	}
	email := map[NoticeKind]bool{}
	for _, k := range NoticeKinds {
		email[k] = p.Email[k] || k == NoticeSecurity
	}
	var phone []byte
	if p.Phone != "" {
		var err error
		if phone, err = a.Store.keys.Seal([]byte(p.Phone), phoneBinding(acct.ID)); err != nil {
			return err
		}
	}
	err := a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO notice_pref (account_id, lang, email_off, sms_on, phone, quiet_from, quiet_to, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET lang = excluded.lang, email_off = excluded.email_off, sms_on = excluded.sms_on,
				phone = excluded.phone, quiet_from = excluded.quiet_from, quiet_to = excluded.quiet_to, updated = excluded.updated`,
			acct.ID, p.Lang, kindList(email, false), kindList(p.SMS, true), phone, p.QuietFrom, p.QuietTo, a.Store.now().UnixMicro())
		if err != nil {
			return err
		}
		return a.recordTx(ctx, tx, acct, audit.SubtypeAccountChange, audit.Success, "notice-preferences-changed", addr, sessionHex)
	})
	if err != nil {
		return err
	}
	a.chain(ctx)
	return nil
}
