-- sqldb_flush gives Flush a one-row write to commit synchronously, which
-- makes PostgreSQL flush its WAL past every earlier asynchronous commit.
-- Each process uses a random row, so instances do not queue on one lock.

-- +goose Up
CREATE TABLE sqldb_flush (
    id INTEGER PRIMARY KEY,
    n  BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE sqldb_flush;
