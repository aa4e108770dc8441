-- The authorization server's token signing keys: the private key sealed
-- at rest (AAD: table, column, id). A new key is published at once and
-- signs from active_from (two minutes later, once every instance's JWKS
-- lists it); the newest active key signs, and the keys it replaced stay
-- published for a day. Times are microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE oauth_signing_key (
    id             TEXT   PRIMARY KEY,
    alg            TEXT   NOT NULL,
    private_sealed BLOB  NOT NULL,
    public_jwk     TEXT   NOT NULL,
    created        BIGINT NOT NULL,
    active_from    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE oauth_signing_key;
