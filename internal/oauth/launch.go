package oauth

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/sqldb"
)

// Launching an app from the portal (SMART's EHR launch): the person
// opens an app from their connected apps page for a record they may act
// for; carefront sends the browser to the app's launch URL with iss (the
// FHIR base) and launch (an opaque, short-lived value). The app asks for
// the "launch" scope with that value, and the authorization screen takes
// the record from it instead of asking whose record.

// LaunchTTL is how long a launch value can start an authorization.
const LaunchTTL = 5 * time.Minute

// Launch is the context a launch value stands for.
type Launch struct {
	ClientID string
	Account  string
	Patient  string
}

// ErrNoLaunch means the launch value is unknown, expired, used or for
// another app.
var ErrNoLaunch = apperr.New(apperr.Invalid, "the launch is unknown or expired; open the app again from the portal")

// CreateLaunch keeps a launch of app clientID by account for patient's
// record and returns the URL to send the browser to: the app's launch
// URL with iss and launch added.
func (f *Flow) CreateLaunch(ctx context.Context, c *Client, account, patient, fhirBase string) (string, error) {
	if c.LaunchURL == "" || !c.Active() {
		return "", apperr.New(apperr.NotFound, "this app cannot be opened from the portal")
	}
	value := randomToken()
	now := f.now()
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM oauth_launch WHERE expires < ?", now.UnixMicro()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO oauth_launch (hash, client_id, account_id, patient_id, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
			hashOf(value), c.ID, account, patient, now.UnixMicro(), now.Add(LaunchTTL).UnixMicro())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("oauth: launch: %w", err)
	}
	u, err := url.Parse(c.LaunchURL)
	if err != nil {
		return "", fmt.Errorf("oauth: launch: the app's launch URL: %w", err)
	}
	q := u.Query()
	q.Set("iss", strings.TrimSuffix(fhirBase, "/"))
	q.Set("launch", value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// launchKey is how a request keeps its launch value: the hex of its
// hash (the value itself is never stored).
func launchKey(value string) string { return hex.EncodeToString(hashOf(value)) }

// launchOf returns the launch a request's launch key stands for, if it
// is in force for clientID.
func (f *Flow) launchOf(ctx context.Context, clientID, key string) (*Launch, error) {
	h, err := hex.DecodeString(key)
	if err != nil || len(h) != 32 {
		return nil, ErrNoLaunch
	}
	var l Launch
	err = f.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT client_id, account_id, patient_id FROM oauth_launch WHERE hash = ? AND expires > ?",
			h, f.now().UnixMicro()).Scan(&l.ClientID, &l.Account, &l.Patient)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && l.ClientID != clientID) {
		return nil, ErrNoLaunch
	}
	if err != nil {
		return nil, fmt.Errorf("oauth: launch: %w", err)
	}
	return &l, nil
}

// RequestLaunch is the launch an authorization request was made with
// (nil when it was a standalone launch).
func (f *Flow) RequestLaunch(ctx context.Context, r *Request) (*Launch, error) {
	if r.Launch == "" {
		return nil, nil
	}
	return f.launchOf(ctx, r.ClientID, r.Launch)
}
