-- What a patient never shares with a caregiver, whatever else the grant
-- covers: sensitivity codes (PSY, ETH, HIV, SEX), comma-separated. The
-- grant's Consent resource carries them as nested deny provisions.

-- +goose Up
ALTER TABLE proxy_grant ADD COLUMN deny_labels TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE proxy_grant DROP COLUMN deny_labels;
