-- The embedded FHIR R4 store. fhir_resource holds the current version of
-- every resource as its original JSON (meta set by the store); fhir_history
-- every version, deleted ones with no body. The index tables are rewritten
-- on each write; fhir_compartment says which patients a resource belongs
-- to, so an access check is one indexed lookup. Times are microseconds
-- since 1970 UTC.

-- +goose Up
CREATE TABLE fhir_resource (
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version BIGINT  NOT NULL,
    updated BIGINT  NOT NULL,
    deleted BOOLEAN NOT NULL,
    hash    BYTEA    NOT NULL,
    body    BYTEA    NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE INDEX fhir_resource_updated ON fhir_resource (type, updated);

CREATE TABLE fhir_history (
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version BIGINT  NOT NULL,
    updated BIGINT  NOT NULL,
    deleted BOOLEAN NOT NULL,
    body    BYTEA,
    PRIMARY KEY (type, id, version)
);

CREATE TABLE fhir_compartment (
    patient TEXT NOT NULL,
    type    TEXT NOT NULL,
    id      TEXT NOT NULL,
    PRIMARY KEY (patient, type, id)
);
CREATE INDEX fhir_compartment_resource ON fhir_compartment (type, id);

CREATE TABLE fhir_token (
    type   TEXT NOT NULL,
    id     TEXT NOT NULL,
    param  TEXT NOT NULL,
    system TEXT NOT NULL,
    code   TEXT NOT NULL
);
CREATE INDEX fhir_token_search ON fhir_token (type, param, code, system);
CREATE INDEX fhir_token_resource ON fhir_token (type, id);

CREATE TABLE fhir_ref (
    type        TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL
);
CREATE INDEX fhir_ref_search ON fhir_ref (type, param, target_id, target_type);
CREATE INDEX fhir_ref_resource ON fhir_ref (type, id);

CREATE TABLE fhir_date (
    type  TEXT   NOT NULL,
    id    TEXT   NOT NULL,
    param TEXT   NOT NULL,
    lo    BIGINT NOT NULL,
    hi    BIGINT NOT NULL
);
CREATE INDEX fhir_date_search ON fhir_date (type, param, lo);
CREATE INDEX fhir_date_resource ON fhir_date (type, id, param, lo);

-- +goose Down
DROP TABLE fhir_date;
DROP TABLE fhir_ref;
DROP TABLE fhir_token;
DROP TABLE fhir_compartment;
DROP TABLE fhir_history;
DROP TABLE fhir_resource;
