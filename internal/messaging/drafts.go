package messaging

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Draft is what a person began to write, saved without sending: a new
// message (Thread "") with its pool and subject, or an answer in a thread.
// Files are not kept with drafts.
type Draft struct {
	Thread  string
	Pool    string
	Subject string
	Text    string
}

// SaveDraft keeps what the author wrote for the record req acts for,
// replacing their earlier draft of the same message. Only someone who may
// write there may (a thread they may not write to is ErrNoThread); a draft
// longer than a message is Invalid. Drafts are the author's own: no one
// else sees them, and they are not audited as messages until sent.
func (s *Store) SaveDraft(ctx context.Context, d Decider, req clinical.Request, who Author, dr Draft) error {
	if utf8.RuneCountInString(dr.Text) > MaxText || utf8.RuneCountInString(dr.Subject) > MaxSubject {
		return inputError("text", "text-long", "a message can be up to %d characters", MaxText)
	}
	patient, pool := req.Principal.Patient, dr.Pool
	if dr.Thread != "" {
		th, err := s.thread(ctx, dr.Thread)
		if err != nil {
			return err
		}
		patient, pool = th.Patient, th.Pool
	}
	dec, _, err := d.Decide(ctx, req, access.Write, access.Target{Type: "Communication", Patients: []string{patient}, Pool: pool})
	if err != nil {
		return err
	}
	if !dec.Permit {
		return ErrNoThread
	}
	id := newID()
	var subject []byte
	if dr.Thread == "" {
		if subject, err = s.Keys.Seal([]byte(strings.TrimSpace(dr.Subject)), seal.Binding{Table: "message_draft", Column: "subject", Row: id}); err != nil {
			return err
		}
	}
	body, err := s.Keys.Seal([]byte(dr.Text), seal.Binding{Table: "message_draft", Column: "body", Row: id})
	if err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := deleteDraft(ctx, tx, who.Account, patient, dr.Thread); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO message_draft (id, account_id, patient_id, thread_id, pool_id, subject, body, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			id, who.Account, patient, dr.Thread, nullable(pool), subject, body, s.now().UnixMicro())
		return err
	})
}

// LoadDraft returns the author's draft of a new message for the record
// (thread "") or of an answer in a thread; nil when there is none.
func (s *Store) LoadDraft(ctx context.Context, account, patient, thread string) (*Draft, error) {
	var (
		id, pool      sql.NullString
		subject, body []byte
	)
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT id, pool_id, subject, body FROM message_draft WHERE account_id = ? AND patient_id = ? AND thread_id = ?",
			account, patient, thread).Scan(&id, &pool, &subject, &body)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the draft could not be read")
	}
	dr := &Draft{Thread: thread, Pool: pool.String}
	text, err := s.Keys.Open(body, seal.Binding{Table: "message_draft", Column: "body", Row: id.String})
	if err != nil {
		return nil, err
	}
	dr.Text = string(text)
	if subject != nil {
		subj, err := s.Keys.Open(subject, seal.Binding{Table: "message_draft", Column: "subject", Row: id.String})
		if err != nil {
			return nil, err
		}
		dr.Subject = string(subj)
	}
	return dr, nil
}

// ThreadPatient is the record a thread is about (for finding a staff
// member's draft of an answer); ErrNoThread for none. It reveals nothing
// the caller may not know: Thread decides the reading itself.
func (s *Store) ThreadPatient(ctx context.Context, thread string) (string, error) {
	th, err := s.thread(ctx, thread)
	if err != nil {
		return "", err
	}
	return th.Patient, nil
}

// deleteDraft removes a draft, in the transaction that sends it.
func deleteDraft(ctx context.Context, tx *sqldb.Tx, account, patient, thread string) error {
	_, err := tx.Exec(ctx, "DELETE FROM message_draft WHERE account_id = ? AND patient_id = ? AND thread_id = ?", account, patient, thread)
	return err
}
