-- When the caregiver and the patient were told that a parent's grant
-- ends at the patient's coming of age (30 days before; once per grant).
-- Microseconds since 1970 UTC.

-- +goose Up
ALTER TABLE proxy_grant ADD COLUMN adult_notice_at BIGINT;

-- +goose Down
ALTER TABLE proxy_grant DROP COLUMN adult_notice_at;
