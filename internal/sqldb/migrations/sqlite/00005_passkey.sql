-- Passkeys (WebAuthn credentials) and the challenges of ceremonies in
-- progress. A passkey's public key is not a secret; what must not be lost
-- is its signature counter and backup flags, checked at every use. A
-- ceremony's challenge is kept server-side so any instance behind the load
-- balancer can finish it, and is spent on first use. Times are
-- microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE passkey (
    id              TEXT    PRIMARY KEY,           -- random; names the passkey in forms
    account_id      TEXT    NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    credential_id   BLOB   NOT NULL UNIQUE,
    name            TEXT    NOT NULL,              -- chosen by the person
    record          BLOB   NOT NULL,              -- the credential (public key, transports, attestation) as JSON
    sign_count      BIGINT  NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state    BOOLEAN NOT NULL,
    created         BIGINT  NOT NULL,
    last_used       BIGINT
);
CREATE INDEX passkey_account ON passkey (account_id);

CREATE TABLE webauthn_ceremony (
    id_hash    BLOB  PRIMARY KEY,
    purpose    TEXT   NOT NULL,                    -- register, second-factor, passkey-sign-in
    account_id TEXT   REFERENCES account (id) ON DELETE CASCADE,
    data       BLOB  NOT NULL,                    -- go-webauthn session data as JSON
    expires    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE webauthn_ceremony;
DROP TABLE passkey;
