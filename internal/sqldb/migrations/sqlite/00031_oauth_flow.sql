-- The authorization server's flow. Times are microseconds since 1970
-- UTC; codes and tokens are kept only as their SHA-256.
--
-- oauth_grant: a person's grant of an app to one record (also a Consent
-- resource in the patient's record): the scopes that stayed ticked, who
-- granted it (the patient, or a caregiver for them), until when refresh
-- tokens may be used; revoking it ends every token issued under it.
-- oauth_request: an authorization request from the authorize endpoint to
-- the code exchange: what the app asked, the grant it was approved
-- with, the ticket only the approving browser holds (the code is issued
-- to it alone), and its code (one minute, single use; code_used_at
-- records the exchange, so a replayed code revokes what it issued).
-- oauth_token: access and refresh tokens; family is the request whose
-- code began them. A refresh token rotates on every use (used_at); a
-- used one presented again after the grace window revokes the family.
-- oauth_jti: client assertion ids seen, until they expire (no replay).

-- +goose Up
CREATE TABLE oauth_grant (
    id          TEXT   PRIMARY KEY,
    client_id   TEXT   NOT NULL REFERENCES oauth_client (id),
    account_id  TEXT   NOT NULL REFERENCES account (id),
    patient_id  TEXT   NOT NULL,
    caregiver   BOOLEAN NOT NULL,
    fhir_user   TEXT   NOT NULL,
    scopes      TEXT   NOT NULL,
    created     BIGINT NOT NULL,
    expires     BIGINT NOT NULL,
    last_used   BIGINT,
    revoked_at  BIGINT,
    revoked_by  TEXT
);
CREATE INDEX oauth_grant_patient ON oauth_grant (patient_id);
CREATE INDEX oauth_grant_account ON oauth_grant (account_id);

CREATE TABLE oauth_request (
    id            TEXT   PRIMARY KEY,
    client_id     TEXT   NOT NULL REFERENCES oauth_client (id),
    redirect_uri  TEXT   NOT NULL,
    scopes        TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    nonce         TEXT   NOT NULL,
    challenge     TEXT   NOT NULL,
    response_mode TEXT   NOT NULL,
    launch        TEXT,
    grant_id      TEXT   REFERENCES oauth_grant (id),
    auth_time     BIGINT,
    amr           TEXT,
    ticket_hash   BLOB,
    code_hash     BLOB  UNIQUE,
    code_expires  BIGINT,
    code_used_at  BIGINT,
    created       BIGINT NOT NULL,
    expires       BIGINT NOT NULL
);

CREATE TABLE oauth_token (
    hash        BLOB  PRIMARY KEY,
    kind        TEXT   NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id    TEXT   NOT NULL REFERENCES oauth_grant (id),
    family      TEXT   NOT NULL,
    scopes      TEXT   NOT NULL,
    created     BIGINT NOT NULL,
    expires     BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX oauth_token_grant ON oauth_token (grant_id);
CREATE INDEX oauth_token_family ON oauth_token (family);

CREATE TABLE oauth_jti (
    client_id TEXT   NOT NULL,
    jti       TEXT   NOT NULL,
    expires   BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

-- +goose Down
DROP TABLE oauth_jti;
DROP TABLE oauth_token;
DROP TABLE oauth_request;
DROP TABLE oauth_grant;
