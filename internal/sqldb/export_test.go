package sqldb

// CachedForTest reports whether query's statement is prepared and kept in
// the SQLite reader (write false) or writer pool's cache.
func (db *DB) CachedForTest(query string, write bool) bool {
	c := db.reads
	if write {
		c = db.writes
	}
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.stmts[query]
	return ok
}
