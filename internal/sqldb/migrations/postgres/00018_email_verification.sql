-- The email address a person gives at activation is proven by a code sent
-- to it before the account can be used. Accounts made before this (and
-- staff and demo accounts, whose addresses the clinic gives) count as
-- proven. Times are microseconds since 1970 UTC.

-- +goose Up
ALTER TABLE account ADD COLUMN email_verified BIGINT;
UPDATE account SET email_verified = created;
-- One account per patient record, even when two activations race.
CREATE UNIQUE INDEX account_one_per_patient ON account (patient_id) WHERE kind = 'person';

CREATE TABLE email_verification (
    account_id TEXT    PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    code_hash  BYTEA   NOT NULL,
    created    BIGINT  NOT NULL,
    expires    BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE email_verification;
DROP INDEX account_one_per_patient;
ALTER TABLE account DROP COLUMN email_verified;
