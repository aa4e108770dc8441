-- Accounts, their factors and browser sessions. Secrets are never stored
-- in the clear: passwords as argon2id hashes, authenticator seeds sealed
-- (AES-GCM bound to table, column and account), recovery codes, activation
-- codes and session ids as SHA-256 hashes. Times are microseconds since
-- 1970 UTC.

-- +goose Up
CREATE TABLE account (
    id            TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,             -- person or staff
    email         TEXT    NOT NULL UNIQUE,      -- lower-cased
    password_hash TEXT,
    patient_id    TEXT,                         -- the person's own Patient id
    staff_role    TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,   -- failed sign-ins since the last success
    last_failure  BIGINT,
    locked_until  BIGINT,
    created       BIGINT  NOT NULL
);
CREATE INDEX account_patient ON account (patient_id);

-- One active authenticator per account, and at most one being added.
CREATE TABLE account_totp (
    account_id TEXT    NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    seed       BYTEA    NOT NULL,
    active     BOOLEAN NOT NULL,
    last_step  BIGINT  NOT NULL,                -- a code is accepted once: only later steps pass
    created    BIGINT  NOT NULL,
    PRIMARY KEY (account_id, active)
);

CREATE TABLE account_recovery_code (
    account_id TEXT   NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    code_hash  BYTEA   NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE session (
    id_hash    BYTEA   PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created    BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires    BIGINT NOT NULL,                 -- absolute end
    mfa_at     BIGINT,                          -- last second-factor check
    level      TEXT   NOT NULL,                 -- password, mfa
    idle       BIGINT NOT NULL,                 -- idle timeout of this session
    user_agent TEXT   NOT NULL,
    address    TEXT   NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX session_account ON session (account_id, last_seen);

-- One-time activation codes. From "carefront accounts invite" a code names a
-- patient record, and the person proves who they are with it, their date
-- of birth and last name; from "carefront staff create" it names the staff
-- account being set up.
CREATE TABLE activation (
    code_hash  BYTEA   PRIMARY KEY,
    patient_id TEXT,
    account_id TEXT REFERENCES account (id) ON DELETE CASCADE,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,      -- failed identity checks
    used_at    BIGINT
);

-- Emailed one-time sign-in codes: a weaker second factor, for people
-- without an authenticator app at hand. 10 minutes, single use.
CREATE TABLE email_code (
    account_id TEXT   NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    code_hash  BYTEA   NOT NULL,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

-- "Forgot password" links: 20 minutes, single use, and bound to the browser
-- that asked by a cookie whose value is stored hashed beside the token.
CREATE TABLE password_reset (
    token_hash BYTEA   PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    nonce_hash BYTEA   NOT NULL,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    used_at    BIGINT
);

-- +goose Down
DROP TABLE password_reset;
DROP TABLE email_code;
DROP TABLE activation;
DROP TABLE session;
DROP TABLE account_recovery_code;
DROP TABLE account_totp;
DROP TABLE account;
