package sqldb

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"
)

// stmtCache keeps a pool's prepared statements by query text. SQLite (pure
// Go) spends much of a clinical search, and of a small write, parsing its
// SQL, and the portal asks the same few shapes of query again and again; a
// *sql.Stmt is prepared once per connection and reused. PostgreSQL's driver
// caches its own statements, so only SQLite's reader and writer pools use
// this.
type stmtCache struct {
	pool *sql.DB
	// mu guards the fields that follow.
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// wanted holds queries a transaction ran before they were cached; they
	// are prepared once the transaction has given its connection back
	// (prepareWanted), since preparing needs a connection of the pool.
	wanted map[string]struct{}
}

// maxCachedStmts bounds the cache: queries with varying text (IN lists of
// different lengths) stop being cached past it, and run as before.
const maxCachedStmts = 512

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, stmts: map[string]*sql.Stmt{}, wanted: map[string]struct{}{}}
}

// peek returns the cached statement for query, or nil; a miss notes the
// query as wanted, to be prepared after the caller's transaction.
func (c *stmtCache) peek(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stmts[query]
	if st == nil && len(c.stmts)+len(c.wanted) < maxCachedStmts && !variableList(query) {
		c.wanted[query] = struct{}{}
	}
	return st
}

// prepareWanted prepares the queries transactions ran uncached. It is
// called after a transaction ends, never inside one; a failure only leaves
// the query uncached.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	if len(c.wanted) == 0 {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, q := range queries {
		c.get(ctx, q) //nolint:errcheck // the query runs unprepared until the next try
	}
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

// variableList reports whether query holds a list whose length follows the
// caller's values (an IN list of placeholders, or several rows of VALUES):
// such texts vary from call to call and would only fill the cache. A single
// row of VALUES is one fixed text and is cached.
func variableList(query string) bool {
	for _, s := range [...]string{"IN (?,", "IN (?, ", "in (?,", "in (?, ", "), (", "),("} {
		if strings.Contains(query, s) {
			return true
		}
	}
	return false
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = map[string]*sql.Stmt{}
}

// query runs query on q (the pool, or a transaction of it) with the cached
// statement when there is one.
//
// In a transaction a statement is used only when already cached (it is
// then prepared on the transaction's own connection), and noted to be
// prepared after it otherwise; outside one it is prepared and cached.
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

// exec is query for a statement that returns no rows.
func (c *stmtCache) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if tx, ok := q.(*sql.Tx); ok {
		if st := c.peek(query); st != nil {
			return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		}
		return tx.ExecContext(ctx, query, args...)
	}
	st, err := c.get(ctx, query)
	if err != nil || st == nil {
		return q.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
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
