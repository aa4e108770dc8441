-- message_attachment: a file sent with a message (a photo or a PDF, checked
-- and, for pictures, encoded again); its name and bytes are sealed.

-- +goose Up
CREATE TABLE message_attachment (
    id           TEXT    PRIMARY KEY,
    message_id   TEXT    NOT NULL REFERENCES message (id),
    thread_id    TEXT    NOT NULL REFERENCES message_thread (id),
    name         BLOB    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    created      BIGINT  NOT NULL
);
CREATE INDEX message_attachment_thread ON message_attachment (thread_id);

-- +goose Down
DROP TABLE message_attachment;
