-- Which labelling the search index's security labels follow. Besides the
-- labels a record's source set (meta.security), the store indexes as
-- _security the sensitivity labels carefront derives from its codes and
-- source (consent's labels.json and the 42 CFR Part 2 sources), so that
-- searches can leave out what a reader may not see before they run.
-- fingerprint names the table version and Part 2 sources the rows were
-- computed with; a process with another one labels every resource again
-- (store.Relabel), without writing new resource versions. updated is
-- microseconds since 1970 UTC.

-- +goose Up
CREATE TABLE fhir_label_index (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT    NOT NULL,
    resources   BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE fhir_label_index;
