// Package appointments books visits from the clinic's free Slots (FHIR
// Schedule and Slot, kept in carefront's own store), moves and cancels
// them within the clinic's policy, offers each as an iCalendar file, and
// reminds the patient a day and an hour before through the job queue.
//
// A booking is an Appointment in carefront's store, written in one
// transaction with its Slot (marked busy), its claim on the Slot (table
// appointment_slot, whose primary key lets exactly one of two concurrent
// bookings of a Slot through, on SQLite and PostgreSQL alike), its audit
// record and its reminder jobs. Every booking, change and read is decided
// by access.Decide (the Write action on Appointment: a caregiver needs
// "visits" in their grant) and audited.
//
// In upstream mode the Slots and bookings are carefront's own; writing
// them back to the EHR's scheduling is a later integration.
package appointments

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

// Code systems and extensions of carefront's bookings.
const (
	// VisitModeExt says how a visit is held: "in-person" or "video".
	VisitModeExt = "https://carefront.example/fhir/StructureDefinition/visit-mode"
	// VisitTypeSystem names the clinic's kinds of visit (Slot and
	// Appointment serviceType).
	VisitTypeSystem = "https://carefront.example/fhir/CodeSystem/visit-type"
	cancelSystem    = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
)

// DefaultPolicy is how long before a visit it can still be cancelled or
// moved online.
const DefaultPolicy = 24 * time.Hour

// DefaultMaxUpcoming is how many visits ahead a patient may hold booked
// online at once.
const DefaultMaxUpcoming = 4

// MaxReason is the length of what a patient writes about why they come.
const MaxReason = 500

// Store books, moves and cancels visits.
type Store struct {
	DB    *sqldb.DB
	FHIR  *store.Store
	Audit *audit.Writer
	// Jobs enqueues the reminders; nil sends none.
	Jobs Enqueuer
	// Reminders queues the PHI-free reminder notice to the patient in tx;
	// nil sends none.
	Reminders Reminder
	// Caregivers lists the accounts ("Person/ID") holding an accepted
	// grant to the patient's record (access.Store's policy); with Gateway
	// it lets a reminder also go to each caregiver who may see the visit
	// at the time it is sent. Nil reminds the patient only.
	Caregivers func(ctx context.Context, patient string) ([]string, error)
	Gateway    Decider
	// Policy: a visit can be cancelled or moved online until this long
	// before it starts (DefaultPolicy when 0).
	Policy time.Duration
	// MaxUpcoming is how many visits still ahead a patient may hold
	// booked online at once (DefaultMaxUpcoming when 0), so that one
	// account cannot take the clinic's free times from everyone else.
	MaxUpcoming int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Enqueuer adds jobs in a transaction (jobs.Queue).
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx *sqldb.Tx, args jobs.Args, o *jobs.EnqueueOptions) (bool, error)
}

// Reminder queues a visit reminder to the account of a patient's own
// record: it says the date and time and the clinic's name, nothing else
// (identity.Auth.QueueVisitReminder).
type Reminder interface {
	QueueVisitReminder(ctx context.Context, tx *sqldb.Tx, patientID string, at time.Time, clinic string) error
	QueueVisitReminderTo(ctx context.Context, tx *sqldb.Tx, accountID string, at time.Time, clinic string) error
}

// Decider decides and audits for a person (clinical.Gateway).
type Decider interface {
	Decide(ctx context.Context, req clinical.Request, a access.Action, t access.Target) (access.Decision, clinical.Request, error)
	AuditRecord(req clinical.Request, sub audit.Coding, action audit.Action) audit.Record
	Read(ctx context.Context, req clinical.Request, typ, id string) (*fhir.Resource, error)
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Store) maxUpcoming() int {
	if s.MaxUpcoming > 0 {
		return s.MaxUpcoming
	}
	return DefaultMaxUpcoming
}

// Limits are the clinic's rules for booking online, for the pages to say.
type Limits struct {
	Policy      time.Duration // changes allowed until this long before
	MaxUpcoming int           // visits ahead held at once
}

// Limits returns the rules in force.
func (s *Store) Limits() Limits { return Limits{Policy: s.policy(), MaxUpcoming: s.maxUpcoming()} }

func (s *Store) policy() time.Duration {
	if s.Policy > 0 {
		return s.Policy
	}
	return DefaultPolicy
}

// Slot is a free time a visit can be booked in.
type Slot struct {
	ID            string
	Start, End    time.Time
	Type          string // visit type code (VisitTypeSystem)
	TypeName      string
	Clinician     string // Practitioner id
	ClinicianName string
	Location      string // Location id
	Place         string // the Location's name
	Video         bool
	Clinic        string // the clinic's (Organization's) name
}

// Appointment is a booked (or cancelled) visit as the patient sees it.
type Appointment struct {
	ID            string
	Patient       string
	Status        string // booked, cancelled, fulfilled, ...
	Start, End    time.Time
	Type          string
	TypeName      string
	Clinician     string
	ClinicianName string
	Location      string
	Place         string
	Video         bool
	Clinic        string
	Phone         string // the place's or clinic's phone number
	Reason        string
	Slot          string
	Version       string
	// ChangeUntil is the last moment it can be cancelled or moved online.
	ChangeUntil time.Time
}

// Changeable reports whether the patient can still cancel or move it
// online at now.
func (a *Appointment) Changeable(now time.Time) bool {
	return a.Status == "booked" && now.Before(a.ChangeUntil)
}

// inputError is a choice that cannot be acted on, beside its field (""
// for the form as a whole), with the page's message "book."+key.
func inputError(code apperr.Code, field, key, format string, args ...any) *apperr.FieldError {
	return apperr.NewField(code, field, "book."+key, format, args...)
}

// KeyTooMany is the message key of a refusal for holding MaxUpcoming visits ahead.
const KeyTooMany = "book.too-many"

// ErrSlotTaken: someone else booked the time first, or it has passed.
var ErrSlotTaken = inputError(apperr.Conflict, "slot", "slot-taken", "that time was just booked by someone else, or has passed; choose another")

// ErrNoAppointment is a visit that does not exist or is not the person's:
// the same answer for both.
var ErrNoAppointment = apperr.New(apperr.NotFound, "no such visit")

func newID() string { return store.NewUUID() }

// Filter narrows the free Slots.
type Filter struct {
	Type, Clinician, Location string
	// From and To bound the start (default: from an hour from now, for
	// 31 days).
	From, To time.Time
}

// Free lists the free Slots matching f, earliest first. Slots hold no
// patient's data (a directory type), so listing them is not audited.
func (s *Store) Free(ctx context.Context, f Filter) ([]Slot, error) {
	now := s.now()
	if f.From.Before(now.Add(time.Hour)) {
		f.From = now.Add(time.Hour) // a visit is not booked online within the hour
	}
	if f.To.IsZero() || f.To.After(f.From.AddDate(0, 0, 62)) {
		f.To = f.From.AddDate(0, 0, 31)
	}
	q, err := fhir.ParseQuery("Slot", url.Values{"status": {"free"},
		"start": {"ge" + f.From.Format(time.RFC3339), "lt" + f.To.Format(time.RFC3339)}, "_count": {"500"}}, false)
	if err != nil {
		return nil, err
	}
	d := newDirectory(s.FHIR)
	var out []Slot
	for {
		page, err := s.FHIR.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Matches {
			sl, err := d.slot(ctx, r)
			if err != nil {
				return nil, err
			}
			if (f.Type == "" || sl.Type == f.Type) && (f.Clinician == "" || sl.Clinician == f.Clinician) && (f.Location == "" || sl.Location == f.Location) {
				out = append(out, sl)
			}
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	slices.SortFunc(out, func(a, b Slot) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ClinicianName, b.ClinicianName)
	})
	return out, nil
}

// Slot reads one Slot, free or not.
func (s *Store) Slot(ctx context.Context, id string) (*Slot, string, error) {
	r, err := s.FHIR.Read(ctx, "Slot", id)
	if apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Gone || apperr.CodeOf(err) == apperr.Invalid {
		return nil, "", inputError(apperr.NotFound, "slot", "slot-missing", "that time does not exist; choose another")
	}
	if err != nil {
		return nil, "", err
	}
	sl, err := newDirectory(s.FHIR).slot(ctx, r)
	if err != nil {
		return nil, "", err
	}
	var body struct {
		Status string `json:"status"`
	}
	json.Unmarshal(r.Raw, &body)
	return &sl, body.Status, nil
}

// Get reads one of the person's visits (decided and audited as a read);
// another patient's is ErrNoAppointment, as a missing one.
func (s *Store) Get(ctx context.Context, d Decider, req clinical.Request, id string) (*Appointment, error) {
	r, err := d.Read(ctx, req, "Appointment", id)
	switch apperr.CodeOf(err) {
	case apperr.NotFound, apperr.Gone, apperr.Forbidden, apperr.Invalid:
		return nil, ErrNoAppointment
	}
	if err != nil {
		return nil, err
	}
	a, err := s.appointment(ctx, r)
	if err != nil {
		return nil, err
	}
	if a.Patient != req.Principal.Patient {
		return nil, ErrNoAppointment // in the compartment by another reference
	}
	return a, nil
}

// Author is who books: the account, and the patient's side they act for.
type Author struct {
	Account string
}

// Book books a free Slot for the person's patient. A Slot booked by
// someone else first (or passed) is ErrSlotTaken, and nothing changes.
func (s *Store) Book(ctx context.Context, d Decider, req clinical.Request, who Author, slotID, reason string) (*Appointment, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	slot, status, err := s.Slot(ctx, slotID)
	if err != nil {
		return nil, err
	}
	patient := req.Principal.Patient
	a := &Appointment{ID: newID(), Patient: patient, Status: "booked", Reason: reason}
	a.fill(slot)
	dec, req, err := d.Decide(ctx, req, access.Write, access.Target{Type: "Appointment", ID: a.ID, Patients: []string{patient}})
	if err != nil {
		return nil, err
	}
	rec := d.AuditRecord(req, audit.SubtypeCreate, audit.Create)
	rec.Patient, rec.Entities = "Patient/"+patient, []audit.Entity{{What: "Appointment/" + a.ID}, {What: "Slot/" + slot.ID}}
	if !dec.Permit {
		return nil, s.refuse(ctx, rec, dec.Reason, apperr.New(apperr.Forbidden, "you cannot book visits for this record"))
	}
	now := s.now()
	if status != "free" || !slot.Start.After(now) {
		return nil, s.refuse(ctx, rec, "slot-taken", ErrSlotTaken)
	}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := s.underCap(ctx, tx, patient, now); err != nil {
			return err
		}
		if err := s.claim(ctx, tx, slot, a.ID, patient, who.Account, now); err != nil {
			return err
		}
		if err := s.setSlot(ctx, tx, slot.ID, "busy"); err != nil {
			return err
		}
		if err := s.write(ctx, tx, a, ""); err != nil {
			return err
		}
		if err := s.Audit.Stage(ctx, tx, rec); err != nil {
			return err
		}
		return s.remind(ctx, tx, a, now)
	})
	var many *apperr.FieldError
	if errors.As(err, &many) && many.Key == KeyTooMany {
		return nil, s.refuse(ctx, rec, "too-many-visits", err)
	}
	if errors.Is(err, ErrSlotTaken) || sqldb.IsUniqueViolation(err) {
		return nil, s.refuse(ctx, rec, "slot-taken", ErrSlotTaken)
	}
	if err != nil {
		return nil, err
	}
	s.Audit.Chain(ctx)
	a.ChangeUntil = a.Start.Add(-s.policy())
	return a, nil
}

// underCap refuses a booking in tx when the patient already holds
// MaxUpcoming visits ahead. On PostgreSQL a transaction-scoped advisory
// lock on the patient makes two bookings of theirs count in turn (without
// it both could see room for one more); SQLite runs one write at a time.
func (s *Store) underCap(ctx context.Context, tx *sqldb.Tx, patient string, now time.Time) error {
	if tx.Dialect() == sqldb.Postgres {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "visit-cap:"+patient); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM appointment_slot WHERE patient_id = ? AND starts > ?",
		patient, now.UnixMicro()).Scan(&n); err != nil {
		return err
	}
	if most := s.maxUpcoming(); n >= most {
		return inputError(apperr.Conflict, "", "too-many",
			"you already have %d visits booked ahead, the most that can be booked online; cancel one or call the clinic to book another", most).WithBound(strconv.Itoa(most))
	}
	return nil
}

// Move moves one of the person's visits to another free Slot, within the
// policy; the old Slot is free again.
func (s *Store) Move(ctx context.Context, d Decider, req clinical.Request, who Author, id, slotID string) (*Appointment, error) {
	a, rec, err := s.changing(ctx, d, req, id)
	if err != nil {
		return nil, err
	}
	slot, status, err := s.Slot(ctx, slotID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if status != "free" || !slot.Start.After(now) {
		return nil, s.refuse(ctx, rec, "slot-taken", ErrSlotTaken)
	}
	old := a.Slot
	a.fill(slot)
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := s.release(ctx, tx, old, a.ID); err != nil {
			return err
		}
		if err := s.claim(ctx, tx, slot, a.ID, a.Patient, who.Account, now); err != nil {
			return err
		}
		if err := s.setSlot(ctx, tx, slot.ID, "busy"); err != nil {
			return err
		}
		if err := s.write(ctx, tx, a, a.Version); err != nil {
			return err
		}
		rec.Entities = append(rec.Entities, audit.Entity{What: "Slot/" + slot.ID})
		if err := s.Audit.Stage(ctx, tx, rec); err != nil {
			return err
		}
		return s.remind(ctx, tx, a, now)
	})
	if errors.Is(err, ErrSlotTaken) || sqldb.IsUniqueViolation(err) {
		return nil, s.refuse(ctx, rec, "slot-taken", ErrSlotTaken)
	}
	if err != nil {
		return nil, err
	}
	s.Audit.Chain(ctx)
	a.ChangeUntil = a.Start.Add(-s.policy())
	return a, nil
}

// Cancel cancels one of the person's visits, within the policy; its Slot
// is free again and its reminders are not sent.
func (s *Store) Cancel(ctx context.Context, d Decider, req clinical.Request, who Author, id string) (*Appointment, error) {
	a, rec, err := s.changing(ctx, d, req, id)
	if err != nil {
		return nil, err
	}
	a.Status = "cancelled"
	rec.Reason = "cancelled"
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := s.release(ctx, tx, a.Slot, a.ID); err != nil {
			return err
		}
		if err := s.write(ctx, tx, a, a.Version); err != nil {
			return err
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if apperr.CodeOf(err) == apperr.Precondition {
		return nil, inputError(apperr.Conflict, "", "changed", "the visit changed while you looked at it; check it and try again")
	}
	if err != nil {
		return nil, err
	}
	s.Audit.Chain(ctx)
	return a, nil
}

// changing reads a visit the person is about to change, decides the
// write, and checks the policy. rec is the audit record of the change.
func (s *Store) changing(ctx context.Context, d Decider, req clinical.Request, id string) (*Appointment, audit.Record, error) {
	a, err := s.Get(ctx, d, req, id)
	if err != nil {
		return nil, audit.Record{}, err
	}
	dec, req, err := d.Decide(ctx, req, access.Write, access.Target{Type: "Appointment", ID: a.ID, Patients: []string{a.Patient}})
	if err != nil {
		return nil, audit.Record{}, err
	}
	rec := d.AuditRecord(req, audit.SubtypeUpdate, audit.Update)
	rec.Patient, rec.Entities = "Patient/"+a.Patient, []audit.Entity{{What: "Appointment/" + a.ID}}
	if !dec.Permit {
		return nil, rec, s.refuse(ctx, rec, dec.Reason, apperr.New(apperr.Forbidden, "you cannot change visits for this record"))
	}
	if a.Status != "booked" {
		return nil, rec, s.refuse(ctx, rec, "not-booked", inputError(apperr.Conflict, "", "not-booked", "this visit is %s; it cannot be changed", a.Status))
	}
	if !a.Changeable(s.now()) {
		return nil, rec, s.refuse(ctx, rec, "too-late", inputError(apperr.Conflict, "", "too-late",
			"visits can be cancelled or moved online until %d hours before they start; to change this one, call the clinic", int(s.policy().Hours())))
	}
	return a, rec, nil
}

func (s *Store) refuse(ctx context.Context, rec audit.Record, reason string, err error) error {
	rec.Outcome, rec.Reason = audit.MinorFailure, reason
	if aerr := s.Audit.Append(ctx, rec); aerr != nil {
		return aerr
	}
	return err
}

// claim takes the Slot for the visit in tx; a Slot claimed already is
// ErrSlotTaken (on PostgreSQL the insert waits for a concurrent claim's
// transaction, then fails with a unique violation).
func (s *Store) claim(ctx context.Context, tx *sqldb.Tx, slot *Slot, appt, patient, account string, now time.Time) error {
	_, err := tx.Exec(ctx, "INSERT INTO appointment_slot (slot_id, appointment_id, patient_id, account_id, booked, starts) VALUES (?, ?, ?, ?, ?, ?)",
		slot.ID, appt, patient, account, now.UnixMicro(), slot.Start.UnixMicro())
	if sqldb.IsUniqueViolation(err) {
		return ErrSlotTaken
	}
	return err
}

// release frees the visit's Slot in tx.
func (s *Store) release(ctx context.Context, tx *sqldb.Tx, slot, appt string) error {
	if _, err := tx.Exec(ctx, "DELETE FROM appointment_slot WHERE appointment_id = ?", appt); err != nil {
		return err
	}
	if slot == "" {
		return nil // a visit the clinic booked, with no Slot of carefront's
	}
	return s.setSlot(ctx, tx, slot, "free")
}

// setSlot writes the Slot's status in tx.
func (s *Store) setSlot(ctx context.Context, tx *sqldb.Tx, id, status string) error {
	r, err := s.FHIR.ReadIn(ctx, tx, "Slot", id)
	if err != nil {
		return err
	}
	var body map[string]any
	if err := json.Unmarshal(r.Raw, &body); err != nil {
		return err
	}
	if status == "busy" && body["status"] != "free" {
		return ErrSlotTaken
	}
	body["status"] = status
	delete(body, "meta")
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = s.FHIR.UpdateIn(ctx, tx, "Slot", id, raw, "")
	return err
}

// fill takes the visit's time, kind, clinician and place from slot.
func (a *Appointment) fill(sl *Slot) {
	a.Slot, a.Start, a.End = sl.ID, sl.Start, sl.End
	a.Type, a.TypeName = sl.Type, sl.TypeName
	a.Clinician, a.ClinicianName = sl.Clinician, sl.ClinicianName
	a.Location, a.Place, a.Video, a.Clinic = sl.Location, sl.Place, sl.Video, sl.Clinic
}

// write stores the Appointment resource in tx (ifMatch: its version, for
// a change).
func (s *Store) write(ctx context.Context, tx *sqldb.Tx, a *Appointment, ifMatch string) error {
	mode := "in-person"
	if a.Video {
		mode = "video"
	}
	body := map[string]any{"resourceType": "Appointment", "id": a.ID, "status": a.Status,
		"extension":   []any{map[string]any{"url": VisitModeExt, "valueCode": mode}},
		"serviceType": []any{map[string]any{"coding": []any{map[string]any{"system": VisitTypeSystem, "code": a.Type, "display": a.TypeName}}, "text": a.TypeName}},
		"start":       a.Start.UTC().Format(time.RFC3339), "end": a.End.UTC().Format(time.RFC3339),
		"minutesDuration": int(a.End.Sub(a.Start).Minutes()),
		"created":         s.now().Format("2006-01-02"),
		"participant": []any{
			map[string]any{"actor": map[string]any{"reference": "Patient/" + a.Patient}, "status": "accepted", "required": "required"},
			map[string]any{"actor": map[string]any{"reference": "Practitioner/" + a.Clinician, "display": a.ClinicianName}, "status": "accepted", "required": "required"},
			map[string]any{"actor": map[string]any{"reference": "Location/" + a.Location, "display": a.Place}, "status": "accepted", "required": "required"},
		}}
	if a.Slot != "" {
		body["slot"] = []any{map[string]any{"reference": "Slot/" + a.Slot}}
	}
	if a.Reason != "" {
		body["reasonCode"] = []any{map[string]any{"text": a.Reason}}
	}
	if a.Status == "cancelled" {
		body["cancelationReason"] = map[string]any{"coding": []any{map[string]any{"system": cancelSystem, "code": "pat", "display": "Patient"}}}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	w, err := s.FHIR.UpdateIn(ctx, tx, "Appointment", a.ID, raw, ifMatch)
	if err != nil {
		return err
	}
	a.Version = w.Resource.VersionID
	return nil
}

// appointment reads an Appointment resource.
func (s *Store) appointment(ctx context.Context, r *fhir.Resource) (*Appointment, error) {
	var body struct {
		Status    string `json:"status"`
		Start     string `json:"start"`
		End       string `json:"end"`
		Extension []struct {
			URL       string `json:"url"`
			ValueCode string `json:"valueCode"`
		} `json:"extension"`
		ServiceType []concept `json:"serviceType"`
		ReasonCode  []concept `json:"reasonCode"`
		Slot        []ref     `json:"slot"`
		Participant []struct {
			Actor ref `json:"actor"`
		} `json:"participant"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil {
		return nil, err
	}
	a := &Appointment{ID: r.ID, Status: body.Status, Version: r.VersionID}
	a.Start, _ = time.Parse(time.RFC3339, body.Start)
	a.End, _ = time.Parse(time.RFC3339, body.End)
	if len(body.ServiceType) > 0 {
		a.Type, a.TypeName = body.ServiceType[0].code(VisitTypeSystem), body.ServiceType[0].name()
	}
	if len(body.ReasonCode) > 0 {
		a.Reason = body.ReasonCode[0].Text
	}
	if len(body.Slot) > 0 {
		_, a.Slot, _ = fhir.ParseRef(body.Slot[0].Reference)
	}
	d := newDirectory(s.FHIR)
	for _, p := range body.Participant {
		typ, id, ok := fhir.ParseRef(p.Actor.Reference)
		if !ok {
			continue
		}
		switch typ {
		case "Patient":
			a.Patient = id
		case "Practitioner":
			a.Clinician = id
			a.ClinicianName = d.name(ctx, typ, id, p.Actor.Display)
		case "Location":
			a.Location = id
			loc := d.location(ctx, id)
			a.Place, a.Video, a.Clinic, a.Phone = loc.name, loc.video, loc.clinic, loc.phone
			if a.Place == "" {
				a.Place = p.Actor.Display
			}
		}
	}
	for _, e := range body.Extension {
		if e.URL == VisitModeExt {
			a.Video = e.ValueCode == "video"
		}
	}
	a.ChangeUntil = a.Start.Add(-s.policy())
	return a, nil
}

func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(strings.ReplaceAll(reason, "\r\n", "\n"))
	if utf8.RuneCountInString(reason) > MaxReason || !utf8.ValidString(reason) ||
		strings.ContainsFunc(reason, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
		return "", inputError(apperr.Invalid, "reason", "reason-long", "say why you are coming in up to %d characters", MaxReason)
	}
	return reason, nil
}

// Clock is the store's time, by which the policy is kept.
func (s *Store) Clock() time.Time { return s.now() }

// ForClinician lists the booked visits of a clinician (a Practitioner
// id) starting from from until to, earliest first: their own schedule,
// read from carefront's store. The patients' records are not read here;
// a page naming them reads each through the gateway.
func (s *Store) ForClinician(ctx context.Context, practitioner string, from, to time.Time) ([]Appointment, error) {
	q, err := fhir.ParseQuery("Appointment", url.Values{"practitioner": {"Practitioner/" + practitioner}, "status": {"booked"},
		"date": {"ge" + from.UTC().Format(time.RFC3339), "lt" + to.UTC().Format(time.RFC3339)}, "_count": {"200"}}, false)
	if err != nil {
		return nil, err
	}
	var out []Appointment
	for {
		page, err := s.FHIR.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Matches {
			a, err := s.appointment(ctx, r)
			if err != nil {
				return nil, err
			}
			out = append(out, *a)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	slices.SortFunc(out, func(a, b Appointment) int { return a.Start.Compare(b.Start) })
	return out, nil
}
