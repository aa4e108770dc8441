// Package messaging is secure messaging between a patient (or a caregiver
// within their grant) and the clinic's care-team pools: the pools and the
// staff who answer them, threads and messages (their text sealed at rest),
// read state both ways, and each message as a FHIR Communication.
package messaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Store keeps pools, threads and messages.
type Store struct {
	DB    *sqldb.DB
	Keys  *seal.Keys
	Audit *audit.Writer
	// Notices queues the PHI-free notices of new messages in the
	// message's own transaction; nil sends none.
	Notices Notifier
	// Hours are the clinic's office hours: outside them a message from the
	// patient's side gets an automatic reply saying when it will be read.
	// Nil sends none.
	Hours *OfficeHours
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Notifier queues a notice in tx: to an account, or to the account of a
// patient's own record (identity's catalogue of notices).
type Notifier interface {
	QueueNotice(ctx context.Context, tx *sqldb.Tx, accountID, event string) error
	QueuePatientNotice(ctx context.Context, tx *sqldb.Tx, patientID, event string) error
}

// Notices of messages. They say only that a message is waiting: never who
// wrote, about what, or from which team.
const (
	NoticeNewMessage = "message-new"       // to the patient's side
	NoticeNewForTeam = "message-new-staff" // to the members of the pool
)

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// record appends r to the audit trail in tx and chains it after.
func (s *Store) stage(ctx context.Context, tx *sqldb.Tx, r audit.Record) error {
	return s.Audit.Stage(ctx, tx, r)
}

// SealedColumns are the columns messaging seals, for re-encryption after a
// key rotation.
var SealedColumns = []seal.Column{
	{Table: "message_thread", IDColumn: "id", Column: "subject"},
	{Table: "message", IDColumn: "id", Column: "body"},
	{Table: "message_attachment", IDColumn: "id", Column: "name"},
	{Table: "message_attachment", IDColumn: "id", Column: "data"},
	{Table: "message_draft", IDColumn: "id", Column: "subject"},
	{Table: "message_draft", IDColumn: "id", Column: "body"},
}
