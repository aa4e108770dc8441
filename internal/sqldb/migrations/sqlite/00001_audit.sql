-- Audit trail: an append-only SHA-256 hash chain with signed checkpoints.
-- The triggers refuse UPDATE and DELETE; `carefront audit verify` detects
-- changes made around them by anyone with the database file.

-- +goose Up
CREATE TABLE audit_event (
    seq        INTEGER PRIMARY KEY,
    recorded   TEXT    NOT NULL,
    type_code  TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    patient    TEXT,
    request_id TEXT,
    event      BLOB    NOT NULL,
    prev_hash  BLOB    NOT NULL,
    hash       BLOB    NOT NULL
);
CREATE INDEX audit_event_patient ON audit_event (patient, seq) WHERE patient IS NOT NULL;

CREATE TABLE audit_checkpoint (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    key_id    TEXT NOT NULL,
    signature BLOB NOT NULL,
    signed_at TEXT NOT NULL
);

-- The chain head: one row, locked by every append so that appends from
-- several writers form one chain.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, X'0000000000000000000000000000000000000000000000000000000000000000');

-- +goose StatementBegin
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
-- +goose StatementEnd

-- +goose Down
-- The audit trail is never rolled back.
SELECT RAISE(ABORT, 'the audit trail cannot be migrated down');
