-- Audit records staged in the transaction of the change they record: a
-- write of PHI inserts its record here, so both commit or neither does.
-- The audit writer moves staged records into the chain right after the
-- commit (and at start-up, for records a crash left here), in the same
-- transaction that deletes them from this table.

-- +goose Up
CREATE TABLE audit_staged (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    event   BLOB NOT NULL,
    -- HMAC of event under the audit MAC key: a row a database
    -- administrator inserted or edited is refused, not chained.
    mac     BLOB NOT NULL,
    mac_key TEXT NOT NULL
);

-- +goose Down
DROP TABLE audit_staged;
