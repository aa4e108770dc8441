-- SMART Health Links a patient (or a caregiver with full access) makes
-- to share part of a record. The manifest id (256 bits, in the link) is
-- the key; the link's 32-byte encryption key is kept sealed so a
-- long-lived link can be refreshed; a passcode only as an argon2id hash;
-- attempts left fall atomically with each wrong passcode. Each access
-- (when, and the recipient's stated name, sealed) is kept in the link's
-- own table, not in the audit trail. File locations are short-lived and
-- single-use. Times are microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE shl_link (
    id             TEXT    PRIMARY KEY,
    patient_id     TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    label          TEXT    NOT NULL,
    contents       TEXT    NOT NULL,
    flags          TEXT    NOT NULL,
    key_sealed     BLOB      NOT NULL,
    passcode_hash  TEXT,
    attempts_left  INTEGER NOT NULL,
    expires        BIGINT,
    created        BIGINT  NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX shl_link_patient ON shl_link (patient_id);

CREATE TABLE shl_access (
    link_id         TEXT   NOT NULL REFERENCES shl_link (id),
    at              BIGINT NOT NULL,
    recipient_sealed BLOB    NOT NULL
);
CREATE INDEX shl_access_link ON shl_access (link_id, at);

CREATE TABLE shl_file (
    id       TEXT   PRIMARY KEY,
    link_id  TEXT   NOT NULL REFERENCES shl_link (id),
    expires  BIGINT NOT NULL,
    used_at  BIGINT
);

-- +goose Down
DROP TABLE shl_file;
DROP TABLE shl_access;
DROP TABLE shl_link;
