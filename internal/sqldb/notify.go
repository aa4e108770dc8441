package sqldb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notify, inside a transaction, wakes every process listening on channel
// (Listen) once the transaction commits; a rolled-back one wakes nobody.
// On SQLite, which has one process, it does nothing: the caller wakes its
// own listeners. A wake-up is only a hint to look at a table, never the
// record itself.
func (t *Tx) Notify(ctx context.Context, db *DB, channel, payload string) error {
	if t.dialect != Postgres {
		return nil
	}
	_, err := t.Exec(ctx, "SELECT pg_notify(?, ?)", db.channel(channel), payload)
	return err
}

// Listen calls wake with the payload of each notification on channel
// (from Tx.Notify, on any process using this database) until ctx ends. It
// holds a connection of its own and reconnects after a failure, calling
// wake with "" after each (re)connection, since notifications sent while
// it was away are lost: the caller then looks at everything. On SQLite it
// returns at once with nil.
func (db *DB) Listen(ctx context.Context, channel string, wake func(payload string)) error {
	if db.Dialect != Postgres {
		return nil
	}
	name := db.channel(channel)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		err := db.listenOnce(ctx, name, wake, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("listen: connection closed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// channel is the database's name for a channel: PostgreSQL cuts names
// at 63 bytes, so a long one is shortened to a hash of itself.
func (db *DB) channel(name string) string {
	full := db.channelPre + name
	if len(full) <= 63 {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	return "carefront_" + hex.EncodeToString(sum[:16])
}

func (db *DB) listenOnce(ctx context.Context, name string, wake func(string), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.listen)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	connected()
	wake("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		wake(n.Payload)
	}
}
