-- Video visit rooms (package telehealth). visit_room is one visit's
-- state: when it ended, and the clinician's word to those waiting.
-- visit_participant is each person (or guest) of the visit: waiting or
-- admitted by the clinician (the waiting room the server enforces), the
-- connection they are on now ('' when none; seen is that connection's
-- last sign of life, so a crashed instance's people drop out), and the
-- real times of their first join and last leave, for the write-back.
-- Their id is appointment + " " + participant; their display name is
-- sealed at rest (AAD: table, column, id). visit_signal carries one message to
-- one connection, from whichever instance sent it to the one holding the
-- connection (woken by NOTIFY on PostgreSQL); it is deleted when
-- delivered, and a row nobody takes is let go after a minute. Times are
-- microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE visit_room (
    appointment TEXT   PRIMARY KEY,
    patient     TEXT   NOT NULL,
    ended       BIGINT NOT NULL DEFAULT 0,
    notice      TEXT   NOT NULL DEFAULT ''
);
CREATE TABLE visit_participant (
    id          TEXT   PRIMARY KEY,
    appointment TEXT   NOT NULL,
    participant TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    name_sealed BLOB   NOT NULL,
    state       TEXT   NOT NULL,
    conn        TEXT   NOT NULL DEFAULT '',
    seen        BIGINT NOT NULL DEFAULT 0,
    arrived     BIGINT NOT NULL,
    admitted    BIGINT NOT NULL DEFAULT 0,
    joined      BIGINT NOT NULL DEFAULT 0,
    left_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX visit_participant_room ON visit_participant (appointment);
CREATE INDEX visit_participant_conn ON visit_participant (conn);
CREATE TABLE visit_signal (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    conn    TEXT   NOT NULL,
    body    TEXT   NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX visit_signal_conn ON visit_signal (conn, id);

-- +goose Down
DROP TABLE visit_signal;
DROP TABLE visit_participant;
DROP TABLE visit_room;
