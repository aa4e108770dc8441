-- What a patient has decided about their own record that every access
-- decision applies, and a per-patient version counter that anything
-- changing who may see what bumps in the same transaction (so a cache
-- keyed by it, on any instance, never serves a stale decision).
-- result_release is the patient's choice, per result category, to see a
-- result at once (no row) or only after the care team has reviewed it, at
-- most wait_days after it was issued; result_shown lists the held results
-- the patient asked to see anyway. Times are microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE access_version (
    patient_id TEXT   PRIMARY KEY,
    version    BIGINT NOT NULL
);

CREATE TABLE result_release (
    patient_id TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    wait_days  INTEGER NOT NULL,
    updated    BIGINT  NOT NULL,
    PRIMARY KEY (patient_id, category)
);

CREATE TABLE result_shown (
    patient_id TEXT   NOT NULL,
    resource   TEXT   NOT NULL,
    shown      BIGINT NOT NULL,
    PRIMARY KEY (patient_id, resource)
);

-- +goose Down
DROP TABLE result_shown;
DROP TABLE result_release;
DROP TABLE access_version;
