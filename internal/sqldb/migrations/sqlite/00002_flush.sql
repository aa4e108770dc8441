-- On PostgreSQL this version adds the table Flush commits to. SQLite makes
-- commits durable by syncing its write-ahead log and needs nothing; the
-- version exists so both databases count their migrations alike.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
