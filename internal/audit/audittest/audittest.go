// Package audittest reads the audit trail back in tests: the newest
// record, the count, every event. It is for tests only; carefront itself
// reads the trail through audit.Verify and the access log.
package audittest

import (
	"context"
	"testing"

	"carefront/internal/sqldb"
)

// Last returns the newest record's outcome code, patient reference (""
// when none) and event JSON.
func Last(t testing.TB, db *sqldb.DB) (outcome, patient, event string) {
	t.Helper()
	ctx := context.Background()
	err := db.Read(ctx, func(tx *sqldb.Tx) error {
		var p *string
		var ev []byte
		if err := tx.QueryRow(ctx, "SELECT outcome, patient, event FROM audit_event ORDER BY seq DESC LIMIT 1").Scan(&outcome, &p, &ev); err != nil {
			return err
		}
		if p != nil {
			patient = *p
		}
		event = string(ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return outcome, patient, event
}

// Count returns how many records the trail holds.
func Count(t testing.TB, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.Read(context.Background(), func(tx *sqldb.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM audit_event").Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Events returns every record's event JSON, oldest first.
func Events(t testing.TB, db *sqldb.DB) []string {
	t.Helper()
	var events []string
	ctx := context.Background()
	err := db.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT event FROM audit_event ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			events = append(events, string(b))
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return events
}
