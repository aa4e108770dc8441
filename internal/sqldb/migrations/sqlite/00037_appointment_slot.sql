-- appointment_slot: the claim of a booked visit on its Slot. The primary
-- key is what makes two people booking one Slot at once end with exactly
-- one booking, on either database: the second insert fails. Cancelling or
-- moving the visit deletes the claim, and the Slot is free again.

-- +goose Up
CREATE TABLE appointment_slot (
    slot_id        TEXT   PRIMARY KEY,
    appointment_id TEXT   NOT NULL UNIQUE,
    patient_id     TEXT   NOT NULL,
    account_id     TEXT   NOT NULL,
    booked         BIGINT NOT NULL
);

-- +goose Down
DROP TABLE appointment_slot;
