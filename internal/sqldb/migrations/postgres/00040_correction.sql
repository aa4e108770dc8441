-- Record corrections (HIPAA 164.526, ONC 170.315(d)(4)) are requests too:
-- due is when the care team must have answered (60 days after the
-- request); statement is the patient's statement of disagreement after a
-- denial, kept with the item.

-- +goose Up
ALTER TABLE patient_request ADD COLUMN due BIGINT;
ALTER TABLE patient_request ADD COLUMN statement TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE patient_request DROP COLUMN statement;
ALTER TABLE patient_request DROP COLUMN due;
