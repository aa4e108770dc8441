package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Pool is a group of staff who answer patients' messages together ("Dr.
// Rivera's team", "Billing", "Prescriptions").
type Pool struct {
	ID   string
	Name string
	// ResponseTime is how soon patients are told to expect an answer.
	ResponseTime time.Duration
	// Practitioner, when set, is the clinician (Practitioner id) whose
	// patients are offered the pool; otherwise every patient is.
	Practitioner string
	Members      int
	Disabled     bool
}

// Bounds of a pool's response time.
const (
	MinResponseTime = time.Hour
	MaxResponseTime = 14 * 24 * time.Hour
)

// ParseResponseTime reads a response time as the clinic writes it: a
// whole number of days, hours or minutes ("2d", "36h", "90m").
func ParseResponseTime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute}
	if len(s) < 2 {
		return 0, apperr.New(apperr.Invalid, "give the response time as days, hours or minutes, like 2d, 36h or 90m")
	}
	u, ok := unit[s[len(s)-1]]
	n, err := strconv.Atoi(s[:len(s)-1])
	if !ok || err != nil || n <= 0 {
		return 0, apperr.New(apperr.Invalid, "give the response time as days, hours or minutes, like 2d, 36h or 90m")
	}
	d := time.Duration(n) * u
	if d < MinResponseTime || d > MaxResponseTime {
		return 0, apperr.New(apperr.Invalid, "the response time must be between 1 hour and 14 days")
	}
	return d, nil
}

// NewPool is a pool to add.
type NewPool struct {
	Name         string
	ResponseTime time.Duration
	Practitioner string
	// By names who adds it, for the audit trail (a reference, or empty
	// for the operator's command).
	By string
}

// AddPool adds a pool. A blank or overlong name, a name another pool has,
// a response time out of bounds or a malformed Practitioner id is Invalid
// (Conflict for the taken name), and nothing is added.
func (s *Store) AddPool(ctx context.Context, n NewPool) (*Pool, error) {
	name := strings.TrimSpace(n.Name)
	if name == "" || len([]rune(name)) > 80 || strings.ContainsFunc(name, unicode.IsControl) {
		return nil, apperr.New(apperr.Invalid, "give the pool a name, up to 80 characters")
	}
	if n.ResponseTime < MinResponseTime || n.ResponseTime > MaxResponseTime {
		return nil, apperr.New(apperr.Invalid, "the response time must be between 1 hour and 14 days")
	}
	practitioner := strings.TrimPrefix(n.Practitioner, "Practitioner/")
	if practitioner != "" && !fhir.ValidID(practitioner) {
		return nil, apperr.New(apperr.Invalid, "%q is not a Practitioner id", clip(n.Practitioner))
	}
	p := &Pool{ID: newID(), Name: name, ResponseTime: n.ResponseTime, Practitioner: practitioner}
	err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var taken int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM message_pool WHERE lower(name) = lower(?)", name).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return apperr.New(apperr.Conflict, "a pool named %q exists already", name)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO message_pool (id, name, response_mins, practitioner, created) VALUES (?, ?, ?, ?, ?)",
			p.ID, p.Name, int(p.ResponseTime/time.Minute), nullable(practitioner), s.now().UnixMicro()); err != nil {
			return err
		}
		return s.stage(ctx, tx, poolRecord(p.ID, audit.Create, "pool-added", n.By))
	})
	if err != nil {
		return nil, err
	}
	return p, s.Audit.Chain(ctx)
}

// AddMember makes a staff member (by their account's email) answer a pool
// (by its id or name). Only clinicians and support staff answer patients;
// an unknown pool or address, or another kind of account, is Invalid and
// changes nothing. Adding a member twice is no error.
func (s *Store) AddMember(ctx context.Context, pool, email, by string) error {
	err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		id, err := poolID(ctx, tx, pool)
		if err != nil {
			return err
		}
		var account, kind string
		var role sql.NullString
		err = tx.QueryRow(ctx, "SELECT id, kind, staff_role FROM account WHERE email = ?", strings.ToLower(strings.TrimSpace(email))).Scan(&account, &kind, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.New(apperr.Invalid, "no staff account has the address %q", clip(email))
		}
		if err != nil {
			return err
		}
		if kind != "staff" || (role.String != "clinician" && role.String != "support") {
			return apperr.New(apperr.Invalid, "%q is not a clinician's or support staff member's account: only they answer patients' messages", clip(email))
		}
		var already int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM message_pool_member WHERE pool_id = ? AND account_id = ?", id, account).Scan(&already); err != nil {
			return err
		}
		if already > 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, "INSERT INTO message_pool_member (pool_id, account_id, added) VALUES (?, ?, ?)", id, account, s.now().UnixMicro()); err != nil {
			return err
		}
		rec := poolRecord(id, audit.Update, "pool-member-added", by)
		rec.Entities = append(rec.Entities, audit.Entity{What: "Person/" + account})
		return s.stage(ctx, tx, rec)
	})
	if err != nil {
		return err
	}
	return s.Audit.Chain(ctx)
}

// Pools lists every pool, by name.
func (s *Store) Pools(ctx context.Context) ([]Pool, error) {
	return s.pools(ctx, `SELECT p.id, p.name, p.response_mins, p.practitioner, p.disabled_at,
		(SELECT COUNT(*) FROM message_pool_member m WHERE m.pool_id = p.id)
		FROM message_pool p ORDER BY lower(p.name), p.id`)
}

// PoolsFor lists the pools a patient may write to, by name: the clinic's
// general pools and those of the clinicians who care for them (caresFor
// answers that, as the access decision does), leaving out disabled pools
// and pools no one answers.
func (s *Store) PoolsFor(ctx context.Context, patient string, caresFor func(ctx context.Context, practitioner, patient string) (bool, error)) ([]Pool, error) {
	all, err := s.Pools(ctx)
	if err != nil {
		return nil, err
	}
	var out []Pool
	for _, p := range all {
		if p.Disabled || p.Members == 0 {
			continue
		}
		if p.Practitioner != "" {
			ok, err := caresFor(ctx, "Practitioner/"+p.Practitioner, patient)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// MemberOf lists the ids of the pools a staff account answers.
func (s *Store) MemberOf(ctx context.Context, account string) ([]string, error) {
	var ids []string
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT m.pool_id FROM message_pool_member m JOIN message_pool p ON p.id = m.pool_id
			WHERE m.account_id = ? AND p.disabled_at IS NULL ORDER BY m.pool_id`, account)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	return ids, err
}

func (s *Store) pools(ctx context.Context, q string, args ...any) ([]Pool, error) {
	var out []Pool
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p            Pool
				mins         int
				practitioner sql.NullString
				disabled     sql.NullInt64
			)
			if err := rows.Scan(&p.ID, &p.Name, &mins, &practitioner, &disabled, &p.Members); err != nil {
				return err
			}
			p.ResponseTime, p.Practitioner, p.Disabled = time.Duration(mins)*time.Minute, practitioner.String, disabled.Valid
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("messaging: pools: %w", err)
	}
	return out, nil
}

// poolID finds a pool by id or (case-insensitive) name.
func poolID(ctx context.Context, tx *sqldb.Tx, ref string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, "SELECT id FROM message_pool WHERE id = ? OR lower(name) = lower(?) ORDER BY id = ? DESC LIMIT 1", ref, strings.TrimSpace(ref), ref).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.New(apperr.Invalid, "no pool has the id or name %q", clip(ref))
	}
	return id, err
}

// poolRecord is the audit record of a change to a pool.
func poolRecord(pool string, action audit.Action, reason, by string) audit.Record {
	r := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeMessagePool}, Action: action,
		Outcome: audit.Success, Reason: reason, Entities: []audit.Entity{{What: "Group/pool-" + pool}}}
	if strings.Contains(by, "/") {
		r.User = by
	} else {
		r.Client = "carefront-cli"
	}
	return r
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// clip shortens what someone typed for an error message.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// ResponseText writes a response time as the clinic gave it ("2d", "36h",
// "90m").
func ResponseText(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
}
