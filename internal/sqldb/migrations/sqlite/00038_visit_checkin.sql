-- visit_checkin: a visit checked in before it starts, with the
-- QuestionnaireResponse of the answers and the Task for the care team
-- when changes were reported (task_id ''), who did it and when. Checking
-- in again replaces the row (the earlier response stays in the store).

-- +goose Up
CREATE TABLE visit_checkin (
    appointment_id TEXT   PRIMARY KEY,
    patient_id     TEXT   NOT NULL,
    response_id    TEXT   NOT NULL,
    task_id        TEXT   NOT NULL,
    account_id     TEXT   NOT NULL,
    checked_in     BIGINT NOT NULL
);
CREATE INDEX visit_checkin_patient ON visit_checkin (patient_id);

-- +goose Down
DROP TABLE visit_checkin;
