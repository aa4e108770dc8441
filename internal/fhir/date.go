package fhir

import (
	"math"
	"regexp"
	"strconv"
	"time"
)

// Range is a span of time [Lo, Hi) in microseconds since 1970 UTC. A FHIR
// date is a range as wide as its precision: "2023" is all of 2023, and
// "2023-04-05T10:00:00Z" is one second.
type Range struct{ Lo, Hi int64 }

// Open ends of a Period without start or end.
const (
	MinTime int64 = math.MinInt64
	MaxTime int64 = math.MaxInt64
)

// datePattern admits FHIR's date, dateTime and instant forms: a year, a
// month, a day, or a day with hh:mm[:ss[.fraction]] and an optional zone
// (search values may leave the zone out; UTC is assumed).
var datePattern = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// ParseDate reads a FHIR date, dateTime or instant into the range it
// covers. ok is false for anything else, including impossible dates.
func ParseDate(s string) (Range, bool) {
	m := datePattern.FindStringSubmatch(s)
	if m == nil {
		return Range{}, false
	}
	num := func(i int) int { n, _ := strconv.Atoi(m[i]); return n }
	year, month, day := num(1), 1, 1
	if m[2] != "" {
		month = num(2)
	}
	if m[3] != "" {
		day = num(3)
	}
	hour, minute, sec, nsec := 0, 0, 0, 0
	if m[4] != "" {
		hour, minute = num(4), num(5)
	}
	if m[6] != "" {
		sec = num(6)
	}
	frac := m[7]
	if len(frac) > 9 { // FHIR allows any precision; beyond nanoseconds it is noise
		frac = frac[:9]
	}
	if frac != "" {
		f := frac
		for len(f) < 9 {
			f += "0"
		}
		nsec, _ = strconv.Atoi(f)
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		h, _ := strconv.Atoi(z[1:3])
		mi, _ := strconv.Atoi(z[4:6])
		if h > 14 || mi > 59 {
			return Range{}, false
		}
		off := h*3600 + mi*60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	if month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 60 {
		return Range{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, min(sec, 59), nsec, loc)
	if t.Day() != day { // e.g. February 30th rolled over
		return Range{}, false
	}
	var end time.Time
	switch {
	case m[2] == "":
		end = t.AddDate(1, 0, 0)
	case m[3] == "":
		end = t.AddDate(0, 1, 0)
	case m[4] == "":
		end = t.AddDate(0, 0, 1)
	case m[6] == "":
		end = t.Add(time.Minute)
	case frac == "":
		end = t.Add(time.Second)
	default:
		step := time.Duration(1)
		for i := len(frac); i < 9; i++ {
			step *= 10
		}
		end = t.Add(max(step, time.Microsecond))
	}
	return Range{t.UnixMicro(), end.UnixMicro()}, true
}
