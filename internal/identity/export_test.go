package identity

import (
	"slices"

	"carefront/internal/notify"
)

// MailTemplates names every template compose knows.
func MailTemplates() []string {
	ts := []string{"email-code", "reset-link", "email-verify-code", "caregiver-invite", "email-change-code", "visit-reminder", "visit-reminder-caregiver", "visit-guest"}
	for n := range notices {
		ts = append(ts, n)
	}
	slices.Sort(ts)
	return ts
}

// ComposeForTest writes a template in lang ("" for both languages).
func ComposeForTest(template, code, link, lang string) (notify.Message, bool) {
	m, ok := compose(template, mailSecret{Code: code, Link: link, Place: "Riverside Family Health",
		WhenEN: "Tuesday, December 1 at 9:30 AM CST", WhenES: "martes 1 de diciembre a las 9:30 CST"})
	return inLanguage(m, lang), ok
}
