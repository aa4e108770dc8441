package sqldb

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// stmtCache keeps the reader pool's prepared statements by query text.
// SQLite (pure Go) spends much of a clinical search parsing its SQL, and
// the portal asks the same few shapes of query again and again; a
// *sql.Stmt is prepared once per connection and reused. PostgreSQL's
// driver caches its own statements, so only SQLite uses this.
type stmtCache struct {
	pool *sql.DB
	// mu guards the fields that follow.
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache: queries with varying text (IN lists of
// different lengths) stop being cached past it, and run as before.
const maxCachedStmts = 512

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, stmts: map[string]*sql.Stmt{}}
}

// peek returns the cached statement for query, or nil.
func (c *stmtCache) peek(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[query]
}

// get returns the prepared statement for query, preparing it once; nil
// when the cache is full. Preparing takes a connection of the pool, so it
// must never be called while the caller holds one (in a transaction):
// with every connection held so, it would wait for ever.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if variableList(query) {
		return nil, nil
	}
	c.mu.Lock()
	st, ok := c.stmts[query]
	full := len(c.stmts) >= maxCachedStmts
	c.mu.Unlock()
	if ok || full {
		return st, nil
	}
	st, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok {
		st.Close()
		return prev, nil
	}
	c.stmts[query] = st
	return st, nil
}

// variableList reports whether query holds a list of placeholders (an IN
// list of as many as the caller has values): such texts vary from call to
// call and would only fill the cache.
func variableList(query string) bool {
	return strings.Contains(query, "?, ?") || strings.Contains(query, "?,?")
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = map[string]*sql.Stmt{}
}

// query runs query on q (the reader pool, or a read transaction of it)
// with the cached statement when there is one.
//
// In a transaction a statement is used only when already cached (it is
// then prepared on the transaction's own connection); outside one it is
// prepared and cached.
func (c *stmtCache) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	if tx, ok := q.(*sql.Tx); ok {
		if st := c.peek(query); st != nil {
			return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		}
		return tx.QueryContext(ctx, query, args...)
	}
	st, err := c.get(ctx, query)
	if err != nil || st == nil {
		return q.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for at most one row.
func (c *stmtCache) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if tx, ok := q.(*sql.Tx); ok {
		if st := c.peek(query); st != nil {
			return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
		}
		return tx.QueryRowContext(ctx, query, args...)
	}
	st, err := c.get(ctx, query)
	if err != nil || st == nil {
		return q.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
