-- The name of the patient a grant is for, as their record gave it when
-- the grant was made: the caregiver's record switcher names the people
-- whose records they hold, and a caregiver whose access ended is told
-- whose record it was, without reading that record again.

-- +goose Up
ALTER TABLE proxy_grant ADD COLUMN patient_name TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE proxy_grant DROP COLUMN patient_name;
