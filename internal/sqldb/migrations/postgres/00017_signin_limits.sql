-- Sign-in throttling where every instance sees it. signin_throttle counts
-- failed sign-ins per email address, known or not, under a keyed hash of
-- the normalized address (so case variants share one count and the table
-- holds no addresses); rate_bucket holds per-client-address token buckets
-- for instances that share a database. Times are microseconds since 1970.

-- +goose Up
CREATE TABLE signin_throttle (
    key          BYTEA   PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_failure BIGINT,
    locked_until BIGINT
);

CREATE TABLE rate_bucket (
    key     TEXT   PRIMARY KEY,
    tokens  DOUBLE PRECISION NOT NULL,
    updated BIGINT NOT NULL
);

-- +goose Down
DROP TABLE rate_bucket;
DROP TABLE signin_throttle;
