-- message_draft: what a person began to write and saved without sending,
-- one per person, record and conversation (thread_id '' for a new
-- message); its subject and text are sealed. Sending removes it.

-- +goose Up
CREATE TABLE message_draft (
    id         TEXT   PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES account (id),
    patient_id TEXT   NOT NULL,
    thread_id  TEXT   NOT NULL,
    pool_id    TEXT,
    subject    BYTEA,
    body       BYTEA   NOT NULL,
    updated    BIGINT NOT NULL,
    UNIQUE (account_id, patient_id, thread_id)
);

-- +goose Down
DROP TABLE message_draft;
