// Package store is carefront's embedded FHIR R4 store on SQLite or
// PostgreSQL: resources kept as their original JSON with full version
// history, search index tables written with each version, the patient
// compartment computed on write, and transaction and batch Bundles.
//
// The store decides nothing about who may see what: callers acting for a
// person reach it through clinical.Gateway, which asks access.Decide and
// writes the audit trail.
package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Store is the embedded FHIR store.
type Store struct {
	db *sqldb.DB
	// NewID makes ids for created resources; nil means random UUIDs.
	NewID func() string
	// Labels, when set, gives the labels indexed as _security beside a
	// resource's own (labels.go); every process writing to one database
	// should have the same.
	Labels Labeler
}

// New returns a store on db, whose migrations must have been applied.
func New(db *sqldb.DB) *Store { return &Store{db: db} }

func (s *Store) now() time.Time { return s.db.Now().UTC().Truncate(time.Microsecond) }

// Read returns the current version of a resource: NotFound when there is
// none, Gone when it was deleted.
func (s *Store) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	var r *fhir.Resource
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		r, err = readCurrent(ctx, tx, typ, id)
		return err
	})
	return r, err
}

func readCurrent(ctx context.Context, tx *sqldb.Tx, typ, id string) (*fhir.Resource, error) {
	var (
		version, updated int64
		deleted          bool
		body             []byte
	)
	err := tx.QueryRow(ctx, "SELECT version, updated, deleted, body FROM fhir_resource WHERE type = ? AND id = ?", typ, id).
		Scan(&version, &updated, &deleted, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "%s/%s is not known", typ, id)
	}
	if err != nil {
		return nil, err
	}
	if deleted {
		return nil, apperr.New(apperr.Gone, "%s/%s was deleted", typ, id)
	}
	return &fhir.Resource{Type: typ, ID: id, VersionID: strconv.FormatInt(version, 10), LastUpdated: time.UnixMicro(updated).UTC(), Raw: body}, nil
}

// VRead returns one version of a resource.
func (s *Store) VRead(ctx context.Context, typ, id, version string) (*fhir.Resource, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil || v < 1 {
		return nil, apperr.New(apperr.Invalid, "version %q is not a version number", version)
	}
	var r *fhir.Resource
	err = s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var (
			updated int64
			deleted bool
			body    []byte
		)
		err := tx.QueryRow(ctx, "SELECT updated, deleted, body FROM fhir_history WHERE type = ? AND id = ? AND version = ?", typ, id, v).
			Scan(&updated, &deleted, &body)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.New(apperr.NotFound, "%s/%s has no version %d", typ, id, v)
		}
		if err != nil {
			return err
		}
		if deleted {
			return apperr.New(apperr.Gone, "version %d of %s/%s is its deletion", v, typ, id)
		}
		r = &fhir.Resource{Type: typ, ID: id, VersionID: version, LastUpdated: time.UnixMicro(updated).UTC(), Raw: body}
		return nil
	})
	return r, err
}

// Version is one entry of a resource's history; Resource is nil for the
// version that deleted it.
type Version struct {
	Version  int64
	Updated  time.Time
	Deleted  bool
	Resource *fhir.Resource
}

// History returns every version of a resource, newest first.
func (s *Store) History(ctx context.Context, typ, id string) ([]Version, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	var out []Version
	err := s.db.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT version, updated, deleted, body FROM fhir_history WHERE type = ? AND id = ? ORDER BY version DESC", typ, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				v       Version
				updated int64
				body    []byte
			)
			if err := rows.Scan(&v.Version, &updated, &v.Deleted, &body); err != nil {
				return err
			}
			v.Updated = time.UnixMicro(updated).UTC()
			if !v.Deleted {
				v.Resource = &fhir.Resource{Type: typ, ID: id, VersionID: strconv.FormatInt(v.Version, 10), LastUpdated: v.Updated, Raw: body}
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err == nil && len(out) == 0 {
		return nil, apperr.New(apperr.NotFound, "%s/%s is not known", typ, id)
	}
	return out, err
}

func checkTypeID(typ, id string) error {
	if !fhir.KnownType(typ) {
		return apperr.New(apperr.Invalid, "%q is not a FHIR R4 resource type", clip(typ))
	}
	if !fhir.ValidID(id) {
		return apperr.New(apperr.Invalid, "%q is not a valid FHIR id (1 to 64 letters, digits, '-' or '.')", clip(id))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
