-- A change of an account's email address waits here until the person
-- types the code sent to the new address: one pending change per account,
-- 15 minutes, five tries. Times are microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE email_change (
    account_id TEXT    PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    new_email  TEXT    NOT NULL,
    code_hash  BYTEA   NOT NULL,
    created    BIGINT  NOT NULL,
    expires    BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE email_change;
