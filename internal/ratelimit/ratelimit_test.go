package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

var ctx = context.Background()

func TestBucketsPerKey(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(1, 3, 100) // 3 at once, then one a second
	l.SetClock(func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow(ctx, "192.0.2.1"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow(ctx, "192.0.2.1")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with a wait up to 1s", ok, wait)
	}
	if ok, _ := l.Allow(ctx, "192.0.2.2"); !ok {
		t.Error("another address was limited by the first")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow(ctx, "192.0.2.1"); !ok {
		t.Error("no token after a second")
	}
}

func TestKeysAreBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(1, 3, 100)
	l.SetClock(func() time.Time { return now })
	for i := range 10000 {
		now = now.Add(time.Millisecond)
		l.Allow(ctx, fmt.Sprintf("198.51.%d.%d", i/256, i%256))
	}
	if n := l.Len(); n > 100 {
		t.Errorf("%d keys remembered, want at most 100", n)
	}
	// Buckets that have refilled go first: a key that has just used its
	// burst outlives a crowd of idle ones.
	now = now.Add(time.Minute)
	for range 3 {
		l.Allow(ctx, "203.0.113.9")
	}
	for i := range 50 {
		now = now.Add(time.Millisecond)
		l.Allow(ctx, fmt.Sprintf("198.18.0.%d", i))
	}
	if ok, _ := l.Allow(ctx, "203.0.113.9"); ok {
		t.Error("eviction forgot a key that had just used its burst")
	}
}
