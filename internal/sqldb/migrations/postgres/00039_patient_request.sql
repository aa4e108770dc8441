-- patient_request: what a patient asked the care team for, each a FHIR
-- Task in carefront's store (this row's id is the Task's): a refill or a
-- renewal of a medicine, a review of changes reported at check-in. The row
-- is the queue staff work from and the status the patient sees; reason is
-- why a request was declined, as the care team wrote it for the patient.
-- pharmacy_choice remembers the pharmacy a patient chose last.

-- +goose Up
CREATE TABLE patient_request (
    id          TEXT   PRIMARY KEY,
    patient_id  TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    focus       TEXT   NOT NULL,
    pharmacy_id TEXT   NOT NULL DEFAULT '',
    status      TEXT   NOT NULL,
    reason      TEXT   NOT NULL DEFAULT '',
    account_id  TEXT   NOT NULL,
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL
);
CREATE INDEX patient_request_patient ON patient_request (patient_id, created);
CREATE INDEX patient_request_status ON patient_request (status, created);

CREATE TABLE pharmacy_choice (
    patient_id  TEXT   PRIMARY KEY,
    pharmacy_id TEXT   NOT NULL,
    updated     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE pharmacy_choice;
DROP TABLE patient_request;
