package audit

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"carefront/internal/sqldb"
)

// Entry is one record of a patient's trail, read back for their access
// log: who acted, how, on what kinds of data, with which outcome.
type Entry struct {
	Seq      int64
	Recorded time.Time
	Type     string   // the event type's code (rest, 110100, 110106, ...)
	Subtypes []string // subtype codes (view, read, search, policy-change, ...)
	View     string   // the portal view's name, for a view
	User     string   // "Person/ID" of the person who acted; "" for none
	Client   string   // the app's client id, or a tool (carefront-cli)
	OnBehalf string   // whom the user acted for, when not themself
	Outcome  Outcome
	Reason   string
	// DataTypes are the kinds of data (FHIR types) the access touched:
	// those a view showed, and the types of the resources it named.
	DataTypes []string
}

// TrailQuery selects a page of a patient's trail, newest first.
type TrailQuery struct {
	Patient  string // "Patient/ID"
	From, To time.Time
	// Before, when not 0, is the sequence number the page starts below
	// (the previous page's last Seq).
	Before int64
	Limit  int
}

// PatientTrail reads the records about a patient, newest first, by the
// trail's patient index. Records it cannot read (none, unless the trail
// has been tampered with, which Verify reports) are skipped.
func PatientTrail(ctx context.Context, db *sqldb.DB, q TrailQuery) ([]Entry, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 500
	}
	where := "patient = ?"
	args := []any{q.Patient}
	if q.Before > 0 {
		where += " AND seq < ?"
		args = append(args, q.Before)
	}
	if !q.From.IsZero() {
		where += " AND recorded >= ?"
		args = append(args, q.From.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if !q.To.IsZero() {
		where += " AND recorded < ?"
		args = append(args, q.To.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	args = append(args, q.Limit)
	var out []Entry
	err := db.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT seq, event FROM audit_event WHERE "+where+" ORDER BY seq DESC LIMIT ?", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var raw []byte
			if err := rows.Scan(&seq, &raw); err != nil {
				return err
			}
			ev, err := parseEvent(raw)
			if err != nil {
				continue
			}
			out = append(out, entryOf(seq, ev))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("audit: patient trail: %w", err)
	}
	return out, nil
}

func entryOf(seq int64, ev event) Entry {
	e := Entry{Seq: seq, Type: ev.Type.Code, Outcome: ev.Outcome, Reason: ev.OutcomeDesc}
	e.Recorded, _ = time.Parse("2006-01-02T15:04:05.000Z", ev.Recorded)
	for _, s := range ev.Subtype {
		e.Subtypes = append(e.Subtypes, s.Code)
		if s.System == sysView {
			e.View = s.Code
		}
	}
	for _, a := range ev.Agent {
		switch {
		case a.Requestor && a.Who.Reference != "":
			e.User = a.Who.Reference
		case a.Who.Identifier != nil && a.Who.Identifier.System == "urn:carefront:client":
			e.Client = a.Who.Identifier.Value
		}
	}
	addType := func(t string) {
		for _, x := range e.DataTypes {
			if x == t {
				return
			}
		}
		e.DataTypes = append(e.DataTypes, t)
	}
	for _, en := range ev.Entity {
		switch {
		case en.Role != nil && en.Role.System == sysObjectRole && en.Role.Code == "6" && en.What != nil:
			e.OnBehalf = en.What.Reference
		case en.Type != nil && en.Type.System == "http://hl7.org/fhir/resource-types":
			addType(en.Type.Code)
		case en.Role != nil && en.Role.Code == "4" && en.What != nil && en.What.Reference != "":
			if t, _, ok := cutRef(en.What.Reference); ok {
				addType(t)
			}
		case en.Role != nil && en.Role.Code == "24" && en.Query != "":
			if t := queryTypeOf(en.Query); t != "" {
				addType(t)
			}
		}
	}
	return e
}

func cutRef(ref string) (typ, id string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], true
		}
	}
	return "", "", false
}

// queryTypeOf is the resource type of a stored (base64) query entity.
func queryTypeOf(b64 string) string {
	q, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return ""
	}
	t, _, _ := strings.Cut(string(q), "?")
	if !queryType.MatchString(t) {
		return ""
	}
	return t
}
