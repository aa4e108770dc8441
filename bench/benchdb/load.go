package benchdb

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Run calls fn from clients goroutines for dur (each worker with its own
// seeded random source) and returns p50 and p99 latency in milliseconds
// and operations per second. The first error stops its worker and is
// returned.
func Run(clients int, dur time.Duration, fn func(worker int, r *rand.Rand) error) (p50, p99, rate float64, err error) {
	stop := time.Now().Add(dur)
	all, err := workers(clients, func(i int) ([]time.Duration, error) {
		r := rand.New(rand.NewPCG(uint64(i), 42))
		return timeEach(func() bool { return time.Now().Before(stop) }, func() error { return fn(i, r) })
	})
	if err != nil {
		return 0, 0, 0, err
	}
	p50, p99 = percentiles(all)
	return p50, p99, float64(len(all)) / dur.Seconds(), nil
}

// Drain hands the items to clients workers until the channel is closed and
// empty, and returns what Run does, the rate over the time it took.
func Drain[T any](clients int, items <-chan T, fn func(T) error) (p50, p99, rate float64, err error) {
	start := time.Now()
	all, err := workers(clients, func(int) ([]time.Duration, error) {
		var it T
		next := func() (ok bool) { it, ok = <-items; return ok }
		return timeEach(next, func() error { return fn(it) })
	})
	if err != nil {
		return 0, 0, 0, err
	}
	p50, p99 = percentiles(all)
	return p50, p99, float64(len(all)) / time.Since(start).Seconds(), nil
}

// timeEach calls call while more says to, and returns each call's
// latency; an error stops it.
func timeEach(more func() bool, call func() error) ([]time.Duration, error) {
	var took []time.Duration
	for more() {
		t := time.Now()
		if err := call(); err != nil {
			return took, err
		}
		took = append(took, time.Since(t))
	}
	return took, nil
}

// workers runs work in clients goroutines and gathers their latencies and
// the first error.
func workers(clients int, work func(worker int) ([]time.Duration, error)) ([]time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []time.Duration
		first error
	)
	for i := range clients {
		wg.Go(func() {
			mine, err := work(i)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, mine...)
			if err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return all, first
}

// percentiles returns the p50 and p99 of all in milliseconds.
func percentiles(all []time.Duration) (float64, float64) {
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	return pct(0.50), pct(0.99)
}
