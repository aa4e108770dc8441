-- oauth_grant.end_notice_at: when the people of a long-lived app grant
-- were told that its access ends within a week (once per grant);
-- consent_closed_at: when the Consent of a grant that ended without a
-- disconnection (its lifetime over, its app disabled) was written as
-- inactive.
-- oauth_launch: an app launched from the portal (SMART EHR launch): the
-- launch parameter's SHA-256, the app, the person who opened it and the
-- record it was opened for; it lets one authorization request of that
-- app take the record as its context, within a few minutes.

-- +goose Up
ALTER TABLE oauth_grant ADD COLUMN end_notice_at BIGINT;
ALTER TABLE oauth_grant ADD COLUMN consent_closed_at BIGINT;

CREATE TABLE oauth_launch (
    hash       BYTEA  PRIMARY KEY,
    client_id  TEXT   NOT NULL REFERENCES oauth_client (id),
    account_id TEXT   NOT NULL REFERENCES account (id),
    patient_id TEXT   NOT NULL,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE oauth_launch;
ALTER TABLE oauth_grant DROP COLUMN consent_closed_at;
ALTER TABLE oauth_grant DROP COLUMN end_notice_at;
