-- end_notice_at: when the people of a long-lived app grant were told
-- that its access ends within a week (once per grant).

-- +goose Up
ALTER TABLE oauth_grant ADD COLUMN end_notice_at BIGINT;

-- +goose Down
ALTER TABLE oauth_grant DROP COLUMN end_notice_at;
