-- Audit trail: an append-only SHA-256 hash chain with signed checkpoints.
-- UPDATE, DELETE and TRUNCATE are refused by the database itself; `carefront
-- audit verify` detects changes made around that by a database superuser.

-- +goose Up
CREATE TABLE audit_event (
    seq        BIGINT PRIMARY KEY,
    recorded   TEXT   NOT NULL,
    type_code  TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    outcome    TEXT   NOT NULL,
    patient    TEXT,
    request_id TEXT,
    event      BYTEA  NOT NULL,
    prev_hash  BYTEA  NOT NULL,
    hash       BYTEA  NOT NULL
);
CREATE INDEX audit_event_patient ON audit_event (patient, seq) WHERE patient IS NOT NULL;

CREATE TABLE audit_checkpoint (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL,
    key_id    TEXT  NOT NULL,
    signature BYTEA NOT NULL,
    signed_at TEXT  NOT NULL
);

-- The chain head: one row, locked FOR UPDATE by every append so that
-- appends from several carefront instances form one chain.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA  NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- +goose StatementBegin
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN RAISE EXCEPTION 'the audit trail cannot be migrated down'; END $$;
-- +goose StatementEnd
