package messaging

import (
	"fmt"
	"strings"
	"time"
)

// OfficeHours are when the clinic's teams read messages, in the clinic's
// time zone: a message from the patient's side written outside them gets
// an automatic reply saying when it will be read.
type OfficeHours struct {
	loc *time.Location
	// open holds, by weekday (Sunday 0), the day's opening spans in
	// minutes after midnight, [start, end).
	open [7][][2]int
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ParseOfficeHours reads office hours as the clinic writes them: one or
// more "DAYS HH:MM-HH:MM" separated by commas, where DAYS is a day ("Sat")
// or a range of days ("Mon-Fri"), in loc. "always" is always open (no
// automatic replies).
func ParseOfficeHours(s string, loc *time.Location) (*OfficeHours, error) {
	if loc == nil {
		loc = time.UTC
	}
	h := &OfficeHours{loc: loc}
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "always") {
		for d := range h.open {
			h.open[d] = [][2]int{{0, 24 * 60}}
		}
		return h, nil
	}
	bad := func(part string) error {
		return fmt.Errorf("%q is not office hours like \"Mon-Fri 08:00-17:00\" (days, then opening and closing times; several separated by commas), or \"always\"", part)
	}
	if s == "" {
		return nil, bad(s)
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		days, span, ok := strings.Cut(part, " ")
		if !ok {
			return nil, bad(part)
		}
		from, to, ranged := strings.Cut(strings.ToLower(days), "-")
		first, ok1 := weekdays[from]
		last, ok2 := weekdays[to]
		if !ranged {
			last, ok2 = first, ok1
		}
		start, end, ok3 := strings.Cut(strings.TrimSpace(span), "-")
		a, errA := clock(start)
		b, errB := clock(end)
		if !ok1 || !ok2 || !ok3 || errA != nil || errB != nil || a >= b {
			return nil, bad(part)
		}
		for d := first; ; d = (d + 1) % 7 {
			h.open[d] = append(h.open[d], [2]int{a, b})
			if d == last {
				break
			}
		}
	}
	return h, nil
}

// clock reads "HH:MM" (24-hour, "24:00" allowed as the day's end) as
// minutes after midnight.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if s == "24:00" {
		return 24 * 60, nil
	}
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("not a time")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Open reports whether t is within office hours.
func (h *OfficeHours) Open(t time.Time) bool {
	if h == nil {
		return true
	}
	t = t.In(h.loc)
	m := t.Hour()*60 + t.Minute()
	for _, sp := range h.open[t.Weekday()] {
		if m >= sp[0] && m < sp[1] {
			return true
		}
	}
	return false
}

// Next is the next opening at or after t, in the clinic's time zone; zero
// when the hours are never open.
func (h *OfficeHours) Next(t time.Time) time.Time {
	if h == nil || h.Open(t) {
		return t
	}
	t = t.In(h.loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, h.loc)
	for i := 0; i <= 7; i++ {
		d := day.AddDate(0, 0, i)
		var best time.Time
		for _, sp := range h.open[d.Weekday()] {
			at := time.Date(d.Year(), d.Month(), d.Day(), sp[0]/60, sp[0]%60, 0, 0, h.loc)
			if !at.Before(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		if !best.IsZero() {
			return best
		}
	}
	return time.Time{}
}

var (
	weekdaysEN = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	weekdaysES = []string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	monthsES   = []string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)

// autoReply is the automatic answer to a message written outside office
// hours, in English and Spanish (the message is kept as written, for
// whoever reads the record): when the team will read it, and that
// messages are not for emergencies.
func autoReply(team string, at time.Time, loc *time.Location) string {
	at = at.In(loc)
	zone := loc.String()
	en := fmt.Sprintf("Thank you for your message. %s reads messages during office hours, so it will be read from %s, %s %d at %s (%s time). Messages are not for emergencies: in an emergency, call 911.",
		team, weekdaysEN[at.Weekday()], at.Month(), at.Day(), at.Format("3:04 PM"), zone)
	es := fmt.Sprintf("Gracias por su mensaje. %s lee los mensajes en horario de atención, así que se leerá a partir del %s %d de %s a las %s (hora de %s). Los mensajes no son para emergencias: en una emergencia, llame al 911.",
		team, weekdaysES[at.Weekday()], at.Day(), monthsES[at.Month()-1], at.Format("15:04"), zone)
	return en + "\n\n" + es
}
