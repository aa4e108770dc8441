-- Guests of a video visit (package telehealth): an interpreter or a
-- family member without a portal account, invited by the clinician or
-- the patient. The one-time link's code is kept as its SHA-256 only; the
-- guest's address is not kept at all (it travels sealed in the mail
-- job). starts is the visit's start, all a guest learns of it. The
-- link works once (used), until the visit's join window
-- closes (expires); using it gives the guest's browser a session for
-- that visit alone, kept as its SHA-256 (session_hash). The name the
-- others see is sealed at rest (AAD: table, column, id). Times are
-- microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE visit_guest (
    id           TEXT   PRIMARY KEY,
    appointment  TEXT   NOT NULL,
    patient      TEXT   NOT NULL,
    name_sealed  BLOB   NOT NULL,
    code_hash    TEXT   NOT NULL UNIQUE,
    invited_by   TEXT   NOT NULL,
    created      BIGINT NOT NULL,
    starts       BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    used         BIGINT NOT NULL DEFAULT 0,
    session_hash TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX visit_guest_appointment ON visit_guest (appointment);
CREATE INDEX visit_guest_session ON visit_guest (session_hash);

-- +goose Down
DROP TABLE visit_guest;
