-- The authorization server's token signing keys: the private key sealed
-- at rest (AAD: table, column, id); the newest not retired signs;
-- retired keys stay published in the JWKS for a day. Times are
-- microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE oauth_signing_key (
    id             TEXT   PRIMARY KEY,
    alg            TEXT   NOT NULL,
    private_sealed BLOB  NOT NULL,
    public_jwk     TEXT   NOT NULL,
    created        BIGINT NOT NULL,
    retired_at     BIGINT
);

-- +goose Down
DROP TABLE oauth_signing_key;
