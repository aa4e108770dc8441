-- Caregiver (proxy) grants: a person who may see a patient's record
-- within a preset or a list of data kinds, until a time. A grant names the
-- caregiver's account once it is linked, and their email address (lower-
-- cased) until then. Revoked grants are kept for the history. Times are
-- microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE proxy_grant (
    id                TEXT   PRIMARY KEY,
    patient_id        TEXT   NOT NULL,
    caregiver_email   TEXT   NOT NULL,
    caregiver_account TEXT   REFERENCES account (id) ON DELETE SET NULL,
    preset            TEXT   NOT NULL,
    kinds             TEXT   NOT NULL,                -- resource types, comma-separated; empty is full access
    until_at          BIGINT NOT NULL,
    patient_birth     BIGINT,                         -- the patient's date of birth, for the age policy
    created           BIGINT NOT NULL,
    created_by        TEXT   NOT NULL,
    revoked_at        BIGINT,
    revoked_by        TEXT
);
CREATE INDEX proxy_grant_patient ON proxy_grant (patient_id);
CREATE INDEX proxy_grant_caregiver ON proxy_grant (caregiver_account);

-- +goose Down
DROP TABLE proxy_grant;
