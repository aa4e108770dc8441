-- Staff accounts carry the name they are known by (shown to patients in
-- their access log, and in audit records of their reads) and, for
-- clinicians, the Practitioner resource that is them in the clinical
-- record, through which care relationships are found.

-- +goose Up
ALTER TABLE account ADD COLUMN display_name TEXT;
ALTER TABLE account ADD COLUMN practitioner_id TEXT;

-- +goose Down
ALTER TABLE account DROP COLUMN practitioner_id;
ALTER TABLE account DROP COLUMN display_name;
