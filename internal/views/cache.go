package views

import (
	"fmt"
	"sync"
	"time"
)

// Cache keeps built views for a short time, so a person going back and
// forth between home and a page does not rebuild it each time. An entry
// is keyed by the account, the patient acted for, the view with its
// parameters and the patient's access version: a change of who may see
// what (a new version, on any instance) is never served from it, and no
// entry is shared between two people. Clinical data that changes within
// the TTL (a result just filed) shows when the entry expires. A view with
// a part that could not be loaded is not kept. A hit is audited like a
// build.
type Cache struct {
	TTL time.Duration
	// Max bounds the entries; past it, expired ones go, then all.
	Max int
	Now func() time.Time

	// mu guards entries.
	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
}

// DefaultCacheTTL is how long serve keeps a home view.
const DefaultCacheTTL = 15 * time.Second

type cacheKey struct {
	user, patient, view, params string
	version                     int64
}

type cacheEntry struct {
	v     any
	types []string
	until time.Time
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// key is the entry of view with params for the session's request; ok is
// false when the request has no access version to key by.
func (c *Cache) key(s *session, view string, params ...any) (cacheKey, bool) {
	p := s.v.Request().Principal
	if c == nil || p.Policy == nil || p.Patient == "" || p.User == "" {
		return cacheKey{}, false
	}
	return cacheKey{user: p.User, patient: p.Patient, view: view, params: fmt.Sprintf("%q", params), version: p.Policy.Version}, true
}

func (c *Cache) get(k cacheKey) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *Cache) put(k cacheKey, v any, types []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[cacheKey]cacheEntry{}
	}
	max := c.Max
	if max <= 0 {
		max = 10000
	}
	if len(c.entries) >= max {
		now := c.now()
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= max {
			clear(c.entries)
		}
	}
	c.entries[k] = cacheEntry{v: v, types: types, until: c.now().Add(c.TTL)}
}
