package web

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"carefront/internal/identity"
)

// noticeKindRow is one kind of notice on the settings page.
type noticeKindRow struct {
	Kind       string
	Email, SMS bool
	Always     bool // security notices: email cannot be turned off
}

// showNoticeSettings shows how the person hears from carefront: language,
// channels per kind, mobile number and quiet hours. Patients, caregivers
// and staff alike.
func (s *Server) showNoticeSettings(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	p, err := s.opts.Auth.Store.NoticePrefs(r.Context(), u.account.ID)
	if err != nil {
		return err
	}
	f := noticeForm(p)
	if r.URL.Query().Get("saved") == "1" {
		f.Extra["Saved"] = true
	}
	f.Extra["Zone"] = s.zoneName()
	return s.showForm(w, r, "notice_settings", "notices.title", f, http.StatusOK)
}

// noticeForm fills the form from saved (or submitted) preferences.
func noticeForm(p identity.NoticePrefs) *form {
	f := newForm()
	f.Values["lang"] = p.Lang
	f.Values["phone"] = p.Phone
	if p.QuietFrom != p.QuietTo {
		f.Values["quiet-from"] = clock(p.QuietFrom)
		f.Values["quiet-to"] = clock(p.QuietTo)
	}
	var rows []noticeKindRow
	for _, k := range identity.NoticeKinds {
		email, _ := p.Channels(k)
		rows = append(rows, noticeKindRow{Kind: string(k), Email: email, SMS: p.SMS[k], Always: k == identity.NoticeSecurity})
	}
	f.Extra["Kinds"] = rows
	return f
}

// zoneName names the clinic's time zone, where quiet hours are kept.
func (s *Server) zoneName() string {
	if z := s.opts.Auth.Zone; z != nil {
		return z.String()
	}
	return "UTC"
}

func clock(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

// submitNoticeSettings saves the preferences; a setting that cannot be
// saved is shown beside its field and nothing changes.
func (s *Server) submitNoticeSettings(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	p := identity.DefaultNoticePrefs()
	p.Lang = r.PostFormValue("lang")
	for _, k := range identity.NoticeKinds {
		p.Email[k] = r.PostFormValue("email-"+string(k)) == "on"
		p.SMS[k] = r.PostFormValue("sms-"+string(k)) == "on"
	}
	p.Phone = strings.TrimSpace(r.PostFormValue("phone"))
	from, to := strings.TrimSpace(r.PostFormValue("quiet-from")), strings.TrimSpace(r.PostFormValue("quiet-to"))
	f := newForm()
	var err error
	switch {
	case from == "" && to == "":
	case from == "" || to == "":
		f.Errors["quiet"] = "notices.quiet-both"
	default:
		var e1, e2 error
		p.QuietFrom, e1 = identity.ParseClock("quiet", from)
		p.QuietTo, e2 = identity.ParseClock("quiet", to)
		if e1 != nil || e2 != nil {
			f.Errors["quiet"] = "notices.clock-bad"
		} else if p.QuietFrom == p.QuietTo {
			f.Errors["quiet"] = "notices.quiet-same"
		}
	}
	if len(f.Errors) == 0 {
		err = s.opts.Auth.SetNoticePrefs(r.Context(), u.account, p, clientAddr(r), hex.EncodeToString(u.session.IDHash))
		if err == nil {
			return redirect(w, r, "/settings/notifications?saved=1")
		}
		if !inputErr(f, err) {
			return err
		}
	} else {
		inputErr(f, identity.CheckNoticePrefs(&p)) // every problem at once
	}
	// Show what they wrote, with the errors beside it.
	shown := noticeForm(p)
	shown.Values["phone"], shown.Values["quiet-from"], shown.Values["quiet-to"] = p.Phone, from, to
	shown.Errors = f.Errors
	shown.Extra["Zone"] = s.zoneName()
	return s.showForm(w, r, "notice_settings", "notices.title", shown, http.StatusUnprocessableEntity)
}
