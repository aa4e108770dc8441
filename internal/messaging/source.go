package messaging

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Source puts the messages carefront keeps in front of a clinical source:
// each message is a Communication, its text opened at read time. Reads and
// searches of Communications answer carefront's messages first and then
// the clinical source's own (an EHR's), every other type comes from
// Clinical alone. The gateway in front of it decides and audits each
// access, as for any other type.
type Source struct {
	Clinical clinical.Source
	Store    *Store
}

// Read returns a message as a Communication, or else what Clinical has.
func (s *Source) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if typ != "Communication" {
		return s.Clinical.Read(ctx, typ, id)
	}
	var thread string
	err := s.Store.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT thread_id FROM message WHERE id = ? AND sent IS NOT NULL", id).Scan(&thread)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return s.Clinical.Read(ctx, typ, id)
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the messages could not be read")
	}
	th, err := s.Store.thread(ctx, thread)
	if err != nil {
		return nil, err
	}
	ms, prev, err := s.Store.threadMessages(ctx, th.ID)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if ms[i].ID == id {
			return communication(th, &ms[i], prev[id])
		}
	}
	return nil, apperr.New(apperr.NotFound, "Communication/%s is not known", id)
}

// Cursors of a Communication search: carefront's messages from an offset
// ("m:N"), then the clinical source's pages ("c:" and its own cursor).
const (
	cursorMessages = "m:"
	cursorSource   = "c:"
)

// Search answers Communication searches in a patient's compartment (the
// gateway always sets it), optionally by patient or subject: carefront's
// messages newest first, then the clinical source's. Other parameters are
// refused rather than ignored. Other types go to Clinical.
func (s *Source) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	if q.Type != "Communication" {
		return s.Clinical.Search(ctx, q)
	}
	patient := q.Compartment
	for _, c := range q.Clauses {
		if c.Param.Name != "patient" && c.Param.Name != "subject" {
			return nil, errParams
		}
		for _, r := range c.Refs {
			if (r.Type != "" && r.Type != "Patient") || (patient != "" && r.ID != patient) {
				return &fhir.Page{Total: zero(q)}, nil // someone else's: nothing
			}
			patient = r.ID
		}
	}
	if patient == "" || len(q.IDs) > 0 || q.Sort != "" || len(q.Includes) > 0 || len(q.LastUpdated) > 0 {
		return nil, errParams
	}
	all, err := s.Store.patientMessages(ctx, patient)
	if err != nil {
		return nil, err
	}
	if rest, ok := strings.CutPrefix(q.Cursor, cursorSource); ok {
		return s.sourcePage(ctx, q, rest, len(all))
	}
	start := 0
	if rest, ok := strings.CutPrefix(q.Cursor, cursorMessages); ok {
		if start, err = strconv.Atoi(rest); err != nil || start < 0 {
			return nil, apperr.New(apperr.Invalid, "the page cursor is not valid")
		}
	} else if q.Cursor != "" {
		return nil, apperr.New(apperr.Invalid, "the page cursor is not valid")
	}
	if len(all) == 0 {
		return s.sourcePage(ctx, q, "", 0)
	}
	count := q.Count
	if count <= 0 {
		count = 50
	}
	page := &fhir.Page{}
	for i := start; i < len(all) && i < start+count; i++ {
		r, err := communication(all[i].th, &all[i].m, all[i].prev)
		if err != nil {
			return nil, err
		}
		page.Matches = append(page.Matches, r)
	}
	// After carefront's messages, the source's, if it has any: one
	// resource asked for tells, with its total when the total is asked.
	peek := *q
	peek.Cursor, peek.Count = "", 1
	theirs, err := s.Clinical.Search(ctx, &peek)
	if err != nil {
		return nil, err
	}
	switch {
	case start+count < len(all):
		page.Next = cursorMessages + strconv.Itoa(start+count)
	case len(theirs.Matches) > 0:
		page.Next = cursorSource
	}
	if q.Total && theirs.Total != nil {
		n := len(all) + *theirs.Total
		page.Total = &n
	}
	return page, nil
}

var errParams = apperr.New(apperr.Invalid, "Communication searches take patient or subject, and _count")

// sourcePage is a page of the clinical source's Communications, after
// carefront's mine messages.
func (s *Source) sourcePage(ctx context.Context, q *fhir.Query, cursor string, mine int) (*fhir.Page, error) {
	cq := *q
	cq.Cursor = cursor
	page, err := s.Clinical.Search(ctx, &cq)
	if err != nil {
		return nil, err
	}
	if page.Next != "" {
		page.Next = cursorSource + page.Next
	}
	if page.Total != nil {
		n := *page.Total + mine
		page.Total = &n
	}
	return page, nil
}

// item is one message with its thread and the message it answers.
type item struct {
	th   *Thread
	m    Message
	prev string
}

// patientMessages reads every sent message of a patient's threads, newest
// first.
func (s *Store) patientMessages(ctx context.Context, patient string) ([]item, error) {
	ths, err := s.list(ctx, "t.patient_id = ?", []any{patient})
	if err != nil {
		return nil, err
	}
	var all []item
	for i := range ths {
		ms, prev, err := s.threadMessages(ctx, ths[i].ID)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			all = append(all, item{&ths[i], m, prev[m.ID]})
		}
	}
	slices.SortStableFunc(all, func(a, b item) int { return b.m.Sent.Compare(a.m.Sent) })
	return all, nil
}

func zero(q *fhir.Query) *int {
	if !q.Total {
		return nil
	}
	n := 0
	return &n
}

// threadMessages reads a thread's sent messages and, for each, the message
// it answers (the one before it).
func (s *Store) threadMessages(ctx context.Context, thread string) ([]Message, map[string]string, error) {
	var ms []Message
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		ms, err = s.messages(ctx, tx, thread)
		return err
	})
	if err != nil {
		return nil, nil, apperr.Wrap(err, apperr.Internal, "the messages could not be read")
	}
	prev := map[string]string{}
	for i := 1; i < len(ms); i++ {
		prev[ms[i].ID] = ms[i-1].ID
	}
	return ms, prev, nil
}

// communication is a message as a FHIR R4 Communication: its thread as the
// topic (and a tag), the message it answers, who sent it (the patient, or
// by name the staff member who signed it), when it was sent and received
// (first opened by the other side), and its text.
func communication(th *Thread, m *Message, answers string) (*fhir.Resource, error) {
	type ref struct {
		Reference string `json:"reference,omitempty"`
		Display   string `json:"display,omitempty"`
	}
	type coding struct {
		System string `json:"system"`
		Code   string `json:"code"`
	}
	type attachment struct {
		ContentType string `json:"contentType"`
		Size        int    `json:"size"`
		Title       string `json:"title"`
	}
	type payload struct {
		ContentString     string      `json:"contentString,omitempty"`
		ContentAttachment *attachment `json:"contentAttachment,omitempty"`
	}
	c := struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			LastUpdated string   `json:"lastUpdated"`
			Tag         []coding `json:"tag"`
		} `json:"meta"`
		Status  string `json:"status"`
		Subject ref    `json:"subject"`
		Topic   struct {
			Text string `json:"text"`
		} `json:"topic"`
		InResponseTo []ref     `json:"inResponseTo,omitempty"`
		Sent         string    `json:"sent"`
		Received     string    `json:"received,omitempty"`
		Sender       ref       `json:"sender"`
		Recipient    []ref     `json:"recipient"`
		Payload      []payload `json:"payload"`
	}{ResourceType: "Communication", ID: m.ID, Status: "completed", Subject: ref{Reference: "Patient/" + th.Patient}}
	at := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	c.Meta.LastUpdated = at(m.Sent)
	c.Meta.Tag = []coding{{System: "urn:carefront:message-thread", Code: th.ID}}
	c.Topic.Text = th.Subject
	if answers != "" {
		c.InResponseTo = []ref{{Reference: "Communication/" + answers}}
	}
	c.Sent = at(m.Sent)
	if !m.ReadAt.IsZero() {
		c.Received = at(m.ReadAt)
	}
	patient := ref{Reference: "Patient/" + th.Patient}
	team := ref{Display: th.PoolName}
	switch m.AuthorKind {
	case ByPatient:
		c.Sender, c.Recipient = patient, []ref{team}
	case ByCaregiver:
		c.Sender, c.Recipient = ref{Display: "a caregiver, on the patient's behalf"}, []ref{team}
	case ByStaff:
		c.Sender, c.Recipient = ref{Display: m.AuthorName}, []ref{patient}
	default:
		c.Sender, c.Recipient = ref{Display: th.PoolName}, []ref{patient}
	}
	c.Payload = []payload{{ContentString: m.Text}}
	for _, a := range m.Attachments {
		c.Payload = append(c.Payload, payload{ContentAttachment: &attachment{ContentType: a.ContentType, Size: a.Size, Title: a.Name}})
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	r, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(r.ID) == "" {
		return nil, apperr.New(apperr.Internal, "a message could not be shown")
	}
	return r, nil
}
