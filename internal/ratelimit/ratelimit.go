// Package ratelimit keeps token buckets per key (a client address): in
// memory for one instance (Limiter), evicting keys that have been idle so
// an attacker cycling through addresses cannot grow it without bound; or
// in the database (Shared), so that several instances behind a load
// balancer spend one budget instead of one each.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token buckets, one per key.
type Limiter struct {
	every rate.Limit
	burst int
	max   int // keys kept at most; the oldest idle ones go first
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New allows burst requests at once per key, refilled at perSecond, and
// remembers at most maxKeys keys.
func New(perSecond float64, burst, maxKeys int) *Limiter {
	return &Limiter{every: rate.Limit(perSecond), burst: burst, max: max(16, maxKeys), now: time.Now, buckets: map[string]*bucket{}}
}

// SetClock replaces the clock (tests).
func (l *Limiter) SetClock(now func() time.Time) { l.now = now }

// Allow takes a token for key, or reports how long until one is free.
func (l *Limiter) Allow(_ context.Context, key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops buckets that are full again (idle long enough to refill),
// and if none are, the least recently seen half.
func (l *Limiter) evict(now time.Time) {
	full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.seen) >= full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.max {
		return
	}
	var oldest time.Time
	n := 0
	for _, b := range l.buckets {
		if n == 0 || b.seen.Before(oldest) {
			oldest = b.seen
		}
		n++
	}
	cut := oldest.Add(now.Sub(oldest) / 2)
	for k, b := range l.buckets {
		if !b.seen.After(cut) {
			delete(l.buckets, k)
		}
	}
}

// Len reports how many keys are remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
