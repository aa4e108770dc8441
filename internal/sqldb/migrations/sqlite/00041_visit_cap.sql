-- appointment_slot.starts: when the claimed visit starts (Unix
-- microseconds), so a booking can count the patient's visits still ahead
-- (appointments.Store.MaxUpcoming) in its own transaction. Claims made
-- before this column existed count as past (0).

-- +goose Up
ALTER TABLE appointment_slot ADD COLUMN starts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX appointment_slot_patient ON appointment_slot (patient_id, starts);

-- +goose Down
DROP INDEX appointment_slot_patient;
ALTER TABLE appointment_slot DROP COLUMN starts;
