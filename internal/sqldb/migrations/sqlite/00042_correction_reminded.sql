-- patient_request.reminded: how far the care team has been reminded of a
-- correction's deadline (0 not yet, 1 when 14 days were left, 2 when it
-- passed), so a second run of the reminder job, or a second instance,
-- reminds no one twice.

-- +goose Up
ALTER TABLE patient_request ADD COLUMN reminded INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE patient_request DROP COLUMN reminded;
