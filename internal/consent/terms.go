package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Terms of use: the clinic publishes the portal's terms by version, in
// English and Spanish; a person accepts the current version at sign-in,
// and is asked again when a new one is published. Acceptance is kept
// apart from privacy consents and from treatment consent.

// Terms is one published version of the terms of use.
type Terms struct {
	Version string
	English string
	Spanish string
}

// Text is the terms in lang (es, else English).
func (t Terms) Text(lang string) string {
	if lang == "es" {
		return t.Spanish
	}
	return t.English
}

// TermsBook keeps the terms and who accepted them.
type TermsBook struct {
	DB    *sqldb.DB
	Audit *audit.Writer
}

// MaxTermsBytes bounds a version's text in each language.
const MaxTermsBytes = 200 << 10

// Publish adds a version; it becomes the current one. A version already
// published, a missing or empty text, or text that is not UTF-8 is
// Invalid, and nothing is written.
func (b *TermsBook) Publish(ctx context.Context, t Terms, by string) error {
	v := strings.TrimSpace(t.Version)
	switch {
	case v == "" || len(v) > 40 || strings.ContainsAny(v, " \t\r\n"):
		return apperr.New(apperr.Invalid, "give a version of up to 40 characters without spaces")
	case strings.TrimSpace(t.English) == "" || strings.TrimSpace(t.Spanish) == "":
		return apperr.New(apperr.Invalid, "the terms need their text in English and in Spanish")
	case !utf8.ValidString(t.English) || !utf8.ValidString(t.Spanish):
		return apperr.New(apperr.Invalid, "the text must be UTF-8")
	case len(t.English) > MaxTermsBytes || len(t.Spanish) > MaxTermsBytes:
		return apperr.New(apperr.Invalid, "each text is at most %d KiB", MaxTermsBytes>>10)
	}
	err := b.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM terms WHERE version = ?", v).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.New(apperr.Invalid, "version %s is already published: publish a new version", v)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO terms (version, text_en, text_es, published) VALUES (?, ?, ?, ?)",
			v, t.English, t.Spanish, b.DB.Now().UnixMicro()); err != nil {
			return err
		}
		return b.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Create, Outcome: audit.Success, Reason: "terms-published", Client: by})
	})
	if err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			return err
		}
		return fmt.Errorf("consent: publish terms: %w", err)
	}
	b.Audit.Chain(ctx)
	return nil
}

// Current returns the newest version, or nil when none is published.
func (b *TermsBook) Current(ctx context.Context) (*Terms, error) {
	var t Terms
	err := b.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT version, text_en, text_es FROM terms ORDER BY published DESC, version DESC LIMIT 1").Scan(&t.Version, &t.English, &t.Spanish)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Pending returns the current version when the account has not accepted
// it, else nil.
func (b *TermsBook) Pending(ctx context.Context, accountID string) (*Terms, error) {
	t, err := b.Current(ctx)
	if err != nil || t == nil {
		return nil, err
	}
	var n int
	if err := b.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM terms_acceptance WHERE account_id = ? AND version = ?", accountID, t.Version).Scan(&n)
	}); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, nil
	}
	return t, nil
}

// Accept records that the account accepted version (which must be the
// current one: a page left open across a new version asks again).
func (b *TermsBook) Accept(ctx context.Context, accountID, version, addr string) error {
	t, err := b.Current(ctx)
	if err != nil {
		return err
	}
	if t == nil || t.Version != version {
		return apperr.New(apperr.Conflict, "the terms have changed: read the new version")
	}
	err = b.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO terms_acceptance (account_id, version, accepted_at) VALUES (?, ?, ?)
			ON CONFLICT (account_id, version) DO NOTHING`, accountID, version, b.DB.Now().UnixMicro()); err != nil {
			return err
		}
		return b.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.Success, Reason: "terms-accepted", User: "Person/" + accountID, Address: addr})
	})
	if err != nil {
		return fmt.Errorf("consent: accept terms: %w", err)
	}
	b.Audit.Chain(ctx)
	return nil
}

// Accepted returns the versions an account accepted, newest first, with
// when.
func (b *TermsBook) Accepted(ctx context.Context, accountID string) ([]Acceptance, error) {
	var out []Acceptance
	err := b.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT version, accepted_at FROM terms_acceptance WHERE account_id = ? ORDER BY accepted_at DESC", accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a Acceptance
			var at int64
			if err := rows.Scan(&a.Version, &at); err != nil {
				return err
			}
			a.At = microTime(at)
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}
