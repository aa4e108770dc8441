-- visit_reminder_sent: the reminders of a visit already queued, by visit,
-- the start they were for and how long before it. The reminder job writes
-- its row in the transaction that queues the emails, so a job run again
-- after a crash (its emails queued, its completion not yet recorded)
-- queues nothing the second time.

-- +goose Up
CREATE TABLE visit_reminder_sent (
    appointment_id TEXT   NOT NULL,
    starts         BIGINT NOT NULL,
    lead           TEXT   NOT NULL,
    sent           BIGINT NOT NULL,
    PRIMARY KEY (appointment_id, starts, lead)
);

-- +goose Down
DROP TABLE visit_reminder_sent;
