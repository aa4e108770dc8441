package ratelimit_test

import (
	"testing"
	"time"

	"carefront/internal/ratelimit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// Two instances on one database spend one budget per client address: a
// client switching between them gets no more than from one.
func TestSharedBucketsAreSeenByEveryInstance(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		c := sqldbtest.UseClock(db)
		a := ratelimit.NewShared(db, "signin", 1, 3) // 3 at once, then one a second
		b := ratelimit.NewShared(db, "signin", 1, 3)
		ctx := t.Context()
		for i, l := range []*ratelimit.Shared{a, b, a} {
			if ok, _ := l.Allow(ctx, "192.0.2.1"); !ok {
				t.Fatalf("attempt %d refused within the burst", i+1)
			}
		}
		ok, wait := b.Allow(ctx, "192.0.2.1")
		if ok || wait <= 0 || wait > time.Second {
			t.Fatalf("fourth attempt on the other instance = %v, %v; want refused for up to 1s", ok, wait)
		}
		if ok, _ := b.Allow(ctx, "192.0.2.2"); !ok {
			t.Error("another address shares the first one's budget")
		}
		if ok, _ := ratelimit.NewShared(db, "passkey", 1, 3).Allow(ctx, "192.0.2.1"); !ok {
			t.Error("another limiter shares the sign-in budget")
		}
		c.Add(time.Second)
		if ok, _ := a.Allow(ctx, "192.0.2.1"); !ok {
			t.Error("no token after a second")
		}
		if ok, _ := b.Allow(ctx, "192.0.2.1"); ok {
			t.Error("two tokens after a second")
		}
	})
}
