-- Video visit tokens (package telehealth): the Ed25519 key that signs
-- them, its private half sealed at rest (AAD: table, column, id), shared
-- by every instance; and the ids of the tokens already used, each kept
-- until it expires, so a token joins once. Times are microseconds since
-- 1970 UTC.

-- +goose Up
CREATE TABLE visit_token_key (
    id             TEXT   PRIMARY KEY,
    private_sealed BYTEA  NOT NULL,
    public_key     BYTEA  NOT NULL,
    created        BIGINT NOT NULL
);
CREATE TABLE visit_token_used (
    jti     TEXT   PRIMARY KEY,
    expires BIGINT NOT NULL
);

-- +goose Down
DROP TABLE visit_token_used;
DROP TABLE visit_token_key;
