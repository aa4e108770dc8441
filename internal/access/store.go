package access

import (
	"context"
	"fmt"
	"slices"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Store keeps each patient's Policy and access version in the database,
// so every carefront instance decides alike: a change made through one is
// applied by the other at its very next request.
type Store struct {
	DB    *sqldb.DB
	Audit *audit.Writer
}

// Policy loads a patient's choices and access version.
func (s *Store) Policy(ctx context.Context, patient string) (*Policy, error) {
	p := &Policy{Wait: map[string]int{}}
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM access_version WHERE patient_id = ?", patient).Scan(&p.Version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT category, wait_days FROM result_release WHERE patient_id = ?", patient)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c string
			var d int
			if err := rows.Scan(&c, &d); err != nil {
				rows.Close()
				return err
			}
			p.Wait[c] = d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT resource FROM result_shown WHERE patient_id = ? ORDER BY resource", patient)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				return err
			}
			p.Shown = append(p.Shown, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("access: policy: %w", err)
	}
	return p, nil
}

// Version returns a patient's access version: it changes whenever who may
// see what of their record changes.
func (s *Store) Version(ctx context.Context, patient string) (int64, error) {
	var v int64
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM access_version WHERE patient_id = ?", patient).Scan(&v)
	})
	return v, err
}

// Bump raises a patient's access version in tx: call it in the
// transaction of any change to who may see what.
func Bump(ctx context.Context, tx *sqldb.Tx, patient string) error {
	_, err := tx.Exec(ctx, `INSERT INTO access_version (patient_id, version) VALUES (?, 1)
		ON CONFLICT (patient_id) DO UPDATE SET version = access_version.version + 1`, patient)
	return err
}

// Change says who changed a patient's choices, for the audit record.
type Change struct {
	User    string // "Person/..."
	Address string
}

// SetRelease records a patient's release choices: per category, the days
// a final result waits for review (0 shows it at once). A category not
// named keeps its choice. Bad input changes nothing.
func (s *Store) SetRelease(ctx context.Context, patient string, wait map[string]int, by Change) error {
	for c, d := range wait {
		if !slices.Contains(ReleaseCategories, c) {
			return apperr.New(apperr.Invalid, "%q is not a result category", clip(c))
		}
		if d < 0 || d > MaxWaitDays {
			return apperr.New(apperr.Invalid, "a result may wait from 0 to %d days", MaxWaitDays)
		}
	}
	return s.change(ctx, patient, by, "result-release", nil, func(tx *sqldb.Tx) error {
		now := s.DB.Now().UnixMicro()
		for _, c := range ReleaseCategories {
			d, ok := wait[c]
			if !ok {
				continue
			}
			if d == 0 {
				if _, err := tx.Exec(ctx, "DELETE FROM result_release WHERE patient_id = ? AND category = ?", patient, c); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO result_release (patient_id, category, wait_days, updated) VALUES (?, ?, ?, ?)
				ON CONFLICT (patient_id, category) DO UPDATE SET wait_days = excluded.wait_days, updated = excluded.updated`,
				patient, c, d, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// ShowNow releases held results ("DiagnosticReport/1") the patient asks to
// see before their care team has reviewed them.
func (s *Store) ShowNow(ctx context.Context, patient string, refs []string, by Change) error {
	if len(refs) == 0 {
		return apperr.New(apperr.Invalid, "no result was named")
	}
	var entities []audit.Entity
	for _, r := range refs {
		entities = append(entities, audit.Entity{What: r})
	}
	return s.change(ctx, patient, by, "result-shown", entities, func(tx *sqldb.Tx) error {
		now := s.DB.Now().UnixMicro()
		for _, r := range refs {
			if _, err := tx.Exec(ctx, `INSERT INTO result_shown (patient_id, resource, shown) VALUES (?, ?, ?)
				ON CONFLICT (patient_id, resource) DO NOTHING`, patient, r, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// change runs fn, bumps the patient's access version and stages the audit
// record, all in one transaction, then chains the record.
func (s *Store) change(ctx context.Context, patient string, by Change, reason string, entities []audit.Entity, fn func(*sqldb.Tx) error) error {
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Update, Outcome: audit.Success, Reason: reason, User: by.User, Address: by.Address,
		Patient: "Patient/" + patient, Entities: entities}
	err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := Bump(ctx, tx, patient); err != nil {
			return err
		}
		if s.Audit != nil {
			return s.Audit.Stage(ctx, tx, rec)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("access: %s: %w", reason, err)
	}
	if s.Audit != nil {
		s.Audit.Chain(ctx) // staged with the change: chained now or at the writer's next tick
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
