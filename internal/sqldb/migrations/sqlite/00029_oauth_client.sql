-- Apps registered to connect to patients' records through SMART on FHIR.
-- kind is public (a browser or phone app with no secret), secret
-- (client_secret_basic or _post; the secret is 256 random bits kept only
-- as its SHA-256) or jwks (private_key_jwt against the keys in jwks or at
-- jwks_url). redirect_uris and origins are newline-separated, compared
-- exactly. reviewed says the clinic registered it (an app registered
-- dynamically is shown as not reviewed). Times are microseconds since
-- 1970 UTC; a disabled app gets no token and its tokens stop working.

-- +goose Up
CREATE TABLE oauth_client (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('public', 'secret', 'jwks')),
    secret_hash   BLOB,
    jwks          TEXT,
    jwks_url      TEXT,
    redirect_uris TEXT    NOT NULL,
    launch_url    TEXT,
    origins       TEXT    NOT NULL DEFAULT '',
    reviewed      BOOLEAN NOT NULL,
    created       BIGINT  NOT NULL,
    created_by    TEXT    NOT NULL,
    disabled_at   BIGINT
);

-- +goose Down
DROP TABLE oauth_client;
