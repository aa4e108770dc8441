-- Secure messaging between a patient and a care-team pool.
-- message_pool: a pool staff answer from ("Dr. Rivera's team",
-- "Billing"), with the response time patients are told; a pool with a
-- practitioner is offered to that clinician's patients, one without to
-- every patient. message_pool_member: the staff accounts that answer it.
-- message_thread: a conversation about one patient's care with one pool;
-- its subject is sealed. message: one message of a thread, its text
-- sealed; sent is NULL while it is a draft; read_at is when the other side
-- first opened it.

-- +goose Up
CREATE TABLE message_pool (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    response_mins INTEGER NOT NULL,
    practitioner  TEXT,
    created       BIGINT  NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE message_pool_member (
    pool_id    TEXT   NOT NULL REFERENCES message_pool (id),
    account_id TEXT   NOT NULL REFERENCES account (id),
    added      BIGINT NOT NULL,
    PRIMARY KEY (pool_id, account_id)
);
CREATE INDEX message_pool_member_account ON message_pool_member (account_id);

CREATE TABLE message_thread (
    id          TEXT   PRIMARY KEY,
    patient_id  TEXT   NOT NULL,
    pool_id     TEXT   NOT NULL REFERENCES message_pool (id),
    subject     BLOB   NOT NULL,
    status      TEXT   NOT NULL,              -- open or done
    assigned_to TEXT   REFERENCES account (id),
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL               -- its latest sent message
);
CREATE INDEX message_thread_patient ON message_thread (patient_id, updated);
CREATE INDEX message_thread_pool ON message_thread (pool_id, status, updated);

CREATE TABLE message (
    id          TEXT   PRIMARY KEY,
    thread_id   TEXT   NOT NULL REFERENCES message_thread (id),
    author      TEXT   REFERENCES account (id), -- NULL: carefront's own reply
    author_kind TEXT   NOT NULL,               -- patient, caregiver, staff or auto
    author_name TEXT,                          -- a staff member's name as signed
    body        BLOB   NOT NULL,
    created     BIGINT NOT NULL,
    sent        BIGINT,
    read_at     BIGINT
);
CREATE INDEX message_in_thread ON message (thread_id, created);

-- +goose Down
DROP TABLE message;
DROP TABLE message_thread;
DROP TABLE message_pool_member;
DROP TABLE message_pool;
