package appointments

import (
	"strconv"
	"time"

	ics "github.com/arran4/golang-ical"
)

// CalendarText is what a calendar entry says, in the person's language.
type CalendarText struct {
	Summary string // "Visit with Dr. Anika Patel"
	Video   string // the location of a video visit: "Video visit: join from carefront"
	Note    string // "See or change this visit in carefront: "
}

// Calendar writes a visit as an iCalendar file (RFC 5545) for the
// person's own calendar: one event with a stable UID (the visit's id), so
// that importing it again after a move updates the entry, and a SEQUENCE
// that grows with each change. It carries the time, the clinician and the
// place, and a link back; never the reason for the visit. A cancelled
// visit is written with STATUS:CANCELLED.
func Calendar(a *Appointment, host, link string, text CalendarText, now time.Time) string {
	cal := ics.NewCalendarFor("carefront")
	cal.SetMethod(ics.MethodPublish)
	ev := cal.AddEvent(a.ID + "@" + host)
	ev.SetDtStampTime(now.UTC())
	ev.SetStartAt(a.Start.UTC())
	ev.SetEndAt(a.End.UTC())
	ev.SetSummary(text.Summary)
	if a.Video {
		ev.SetLocation(text.Video)
	} else {
		ev.SetLocation(a.Place)
	}
	ev.SetDescription(text.Note + link)
	ev.SetURL(link)
	if seq, err := strconv.Atoi(a.Version); err == nil {
		ev.SetSequence(seq)
	}
	if a.Status == "cancelled" {
		ev.SetStatus(ics.ObjectStatusCancelled)
	} else {
		ev.SetStatus(ics.ObjectStatusConfirmed)
	}
	return cal.Serialize(ics.WithNewLine("\r\n")) // RFC 5545 lines end in CRLF
}
