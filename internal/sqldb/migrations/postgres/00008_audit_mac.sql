-- Tamper evidence against a database administrator: each record gets a
-- keyed MAC (its key derives from the audit signing key and never enters
-- the database), checkpoints say what made the writer sign, and the
-- writable head row goes: the head is the last record, and appends from
-- several instances take an advisory lock instead of the head row's lock.

-- +goose Up
ALTER TABLE audit_event ADD COLUMN mac BYTEA;
ALTER TABLE audit_event ADD COLUMN mac_key TEXT;
ALTER TABLE audit_checkpoint ADD COLUMN kind TEXT NOT NULL DEFAULT 'count';
DROP TABLE audit_head;

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN RAISE EXCEPTION 'the audit trail cannot be migrated down'; END $$;
-- +goose StatementEnd
