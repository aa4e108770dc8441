-- The portal's terms of use, published by version in English and
-- Spanish, and who accepted which version; and the research studies the
-- clinic invites patients to join (a patient's participation is a
-- research Consent in their record). Times are microseconds since 1970
-- UTC.

-- +goose Up
CREATE TABLE terms (
    version    TEXT   PRIMARY KEY,
    text_en    TEXT   NOT NULL,
    text_es    TEXT   NOT NULL,
    published  BIGINT NOT NULL
);

CREATE TABLE terms_acceptance (
    account_id  TEXT   NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    version     TEXT   NOT NULL REFERENCES terms (version),
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, version)
);

CREATE TABLE research_study (
    id          TEXT   PRIMARY KEY,
    title       TEXT   NOT NULL,
    description TEXT   NOT NULL,
    created     BIGINT NOT NULL,
    closed_at   BIGINT
);

-- +goose Down
DROP TABLE research_study;
DROP TABLE terms_acceptance;
DROP TABLE terms;
