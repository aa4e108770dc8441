-- A patient's invitation of a caregiver: the grant is in force once the
-- caregiver accepts it with their own account, through the link mailed to
-- the invited address (invite_hash is the SHA-256 of the link's secret;
-- the secret itself is never stored). Grants the clinic establishes for an
-- existing account are accepted when made. Times are microseconds since
-- 1970 UTC.

-- +goose Up
ALTER TABLE proxy_grant ADD COLUMN invite_hash BYTEA;
ALTER TABLE proxy_grant ADD COLUMN invite_expires BIGINT;
ALTER TABLE proxy_grant ADD COLUMN accepted_at BIGINT;
UPDATE proxy_grant SET accepted_at = created WHERE caregiver_account IS NOT NULL;
CREATE UNIQUE INDEX proxy_grant_invite ON proxy_grant (invite_hash);

-- +goose Down
DROP INDEX proxy_grant_invite;
ALTER TABLE proxy_grant DROP COLUMN accepted_at;
ALTER TABLE proxy_grant DROP COLUMN invite_expires;
ALTER TABLE proxy_grant DROP COLUMN invite_hash;
