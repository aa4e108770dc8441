-- Tamper evidence against whoever can write the database file: each record
-- gets a keyed MAC (its key derives from the audit signing key and never
-- enters the database), checkpoints say what made the writer sign, and the
-- writable head row goes: the head is the last record.

-- +goose Up
ALTER TABLE audit_event ADD COLUMN mac BLOB;
ALTER TABLE audit_event ADD COLUMN mac_key TEXT;
ALTER TABLE audit_checkpoint ADD COLUMN kind TEXT NOT NULL DEFAULT 'count';
DROP TABLE audit_head;

-- +goose Down
SELECT RAISE(ABORT, 'the audit trail cannot be migrated down');
