package access

import (
	"context"
	"fmt"
	"slices"
	"sync"

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
	// Loaders add to a patient's policy what other packages keep (the
	// caregiver grants of package consent), read in the transaction that
	// read the access version, after it.
	Loaders []Loader

	mu       sync.Mutex
	compiled map[string]*Policy // by patient; each at the version it was read at
}

// Loader adds what it keeps of a patient's policy to p.
type Loader func(ctx context.Context, tx *sqldb.Tx, patient string, p *Policy) error

// maxCompiled bounds the policies kept in memory; past it the cache
// starts again (a policy is a few rows, read again at the next request).
const maxCompiled = 20000

// Policy returns a patient's policy at its current access version. It
// reads the version (one statement, outside a transaction) and, when the
// policy compiled for that version is at hand, returns it; otherwise it
// reads the whole policy in one transaction, the version first, so a
// policy is never kept under a version newer than what it holds. The
// policy returned is shared: callers must not change it.
func (s *Store) Policy(ctx context.Context, patient string) (*Policy, error) {
	const version = "SELECT COALESCE(MAX(version), 0) FROM access_version WHERE patient_id = ?"
	var v int64
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, version, patient).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("access: policy: %w", err)
	}
	s.mu.Lock()
	p := s.compiled[patient]
	s.mu.Unlock()
	if p != nil && p.Version == v {
		return p, nil
	}
	err = s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		if err := tx.QueryRow(ctx, version, patient).Scan(&v); err != nil {
			return err
		}
		var err error
		p, err = s.load(ctx, tx, patient, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("access: policy: %w", err)
	}
	s.mu.Lock()
	if s.compiled == nil || len(s.compiled) >= maxCompiled {
		s.compiled = map[string]*Policy{}
	}
	if c := s.compiled[patient]; c == nil || c.Version <= p.Version {
		s.compiled[patient] = p
	}
	s.mu.Unlock()
	return p, nil
}

// load reads a patient's policy at version v in tx.
func (s *Store) load(ctx context.Context, tx *sqldb.Tx, patient string, v int64) (*Policy, error) {
	p := &Policy{Version: v, Wait: map[string]int{}}
	err := func() error {
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
	}()
	if err != nil {
		return nil, err
	}
	for _, l := range s.Loaders {
		if err := l(ctx, tx, patient, p); err != nil {
			return nil, err
		}
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
