package ratelimit

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"carefront/internal/sqldb"
)

// Shared is a set of token buckets kept in the database (table
// rate_bucket), so every instance on one PostgreSQL database spends the
// same budget: behind a load balancer, a client cannot get an instance's
// allowance from each of them.
type Shared struct {
	db    *sqldb.DB
	name  string
	every float64 // tokens a second
	burst float64
	calls atomic.Uint64
}

// NewShared allows burst requests at once per key, refilled at perSecond.
// name keeps the buckets of different limiters apart.
func NewShared(db *sqldb.DB, name string, perSecond float64, burst int) *Shared {
	return &Shared{db: db, name: name, every: perSecond, burst: float64(burst)}
}

// Allow takes a token for key, or reports how long until one is free. When
// the database cannot answer it refuses for a second: a flood is not let
// through for want of a counter.
func (l *Shared) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration) {
	k := l.name + ":" + key
	now := l.db.Now()
	err := l.db.Write(ctx, func(tx *sqldb.Tx) error {
		q := "SELECT tokens, updated FROM rate_bucket WHERE key = ?"
		if tx.Dialect() == sqldb.Postgres {
			q += " FOR UPDATE"
		}
		var tokens float64
		var updated int64
		err := tx.QueryRow(ctx, q, k).Scan(&tokens, &updated)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.Exec(ctx, "INSERT INTO rate_bucket (key, tokens, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING", k, l.burst, now.UnixMicro()); err != nil {
				return err
			}
			err = tx.QueryRow(ctx, q, k).Scan(&tokens, &updated)
		}
		if err != nil {
			return err
		}
		elapsed := max(0, now.Sub(time.UnixMicro(updated)).Seconds())
		tokens = math.Min(l.burst, tokens+elapsed*l.every)
		if tokens >= 1 {
			tokens--
			ok = true
		} else {
			retryAfter = time.Duration((1 - tokens) / l.every * float64(time.Second))
		}
		_, err = tx.Exec(ctx, "UPDATE rate_bucket SET tokens = ?, updated = ? WHERE key = ?", tokens, now.UnixMicro(), k)
		return err
	})
	if err != nil {
		return false, time.Second
	}
	if l.calls.Add(1)%1024 == 0 {
		l.sweep(ctx, now)
	}
	return ok, retryAfter
}

// sweep deletes buckets idle long enough to be full again, so the table
// does not grow with every address ever seen.
func (l *Shared) sweep(ctx context.Context, now time.Time) {
	full := time.Duration(l.burst / l.every * float64(time.Second))
	l.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM rate_bucket WHERE key LIKE ? AND updated < ?", l.name+":%", now.Add(-full).UnixMicro())
		return err
	})
}
