// Package accesslog is "Who viewed my record": the audit trail's records
// about one patient, read back in plain terms for the patient (and a
// caregiver with full access): who (you, a caregiver by name, clinic
// staff, an app, the clinic's systems), what kind of data, when, which
// way, and whether it was refused. It reads the trail through
// audit.PatientTrail and never writes it.
package accesslog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/consent"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
)

// Who acted, as the log groups them.
const (
	WhoYou       = "you"
	WhoCaregiver = "caregiver"
	WhoClinic    = "clinic"
	WhoApp       = "app"
	WhoLink      = "link"
)

// Way is how the access came.
const (
	WayPortal = "portal"
	WayApp    = "app"
	WayClinic = "clinic"
	WayLink   = "link"
)

// Row is one access as the log shows it.
type Row struct {
	When time.Time `json:"when"`
	// Who is you, caregiver, clinic or app; Name names them (a caregiver's
	// address, a staff member's role, an app's name) when not you.
	Who  string `json:"who"`
	Name string `json:"name,omitempty"`
	// By and ByName, for an app's read, are who connected the app (you or
	// a caregiver, with the name the log gives them).
	By     string `json:"by,omitempty"`
	ByName string `json:"byName,omitempty"`
	Way    string `json:"way"`
	// What is the kind of event: viewed, downloaded, looked-up, sharing,
	// settings, records-added, account.
	What string `json:"what"`
	// View is the page or view, for a portal view.
	View string `json:"view,omitempty"`
	// Kinds are the kinds of data (access.DataKinds names) it touched.
	Kinds   []string `json:"kinds,omitempty"`
	Refused bool     `json:"refused,omitempty"`
}

// Page is one page of the log.
type Page struct {
	Rows []Row `json:"rows"`
	// Next, when not 0, continues the log below this point (before=Next).
	Next int64 `json:"next,omitempty"`
}

// Query filters the log.
type Query struct {
	Patient  string // patient id
	From, To time.Time
	Who      string // "" for everyone, or one of the Who values
	Before   int64
	// Viewer is who reads the log ("Person/ID"); ViewerIsPatient says it
	// is the patient. A caregiver reading it sees other caregivers only
	// as "a caregiver", never their addresses.
	Viewer          string
	ViewerIsPatient bool
}

// PageSize is how many rows a page holds.
const PageSize = 50

// scanLimit bounds how many records one page reads while filtering.
const scanLimit = 2000

// Accounts names the people in the trail.
type Accounts interface {
	AccountByID(ctx context.Context, id string) (*identity.Account, error)
}

// Log reads access logs.
type Log struct {
	DB       *sqldb.DB
	Accounts Accounts
	Grants   *consent.Grants
	// AppName names a registered app by its client id ("" when unknown);
	// nil names apps by their client id.
	AppName func(ctx context.Context, clientID string) string
}

// Read returns a page of the patient's log.
func (l *Log) Read(ctx context.Context, q Query) (*Page, error) {
	grants, err := l.Grants.List(ctx, q.Patient)
	if err != nil {
		return nil, err
	}
	names := map[string]Row{} // by "Person/ID"
	who := func(user string) Row {
		if r, ok := names[user]; ok {
			return r
		}
		r := Row{Who: WhoClinic}
		id := strings.TrimPrefix(user, "Person/")
		for _, g := range grants {
			if g.Account == id {
				r = Row{Who: WhoCaregiver}
				if q.ViewerIsPatient || q.Viewer == user {
					r.Name = g.Email
				}
			}
		}
		if r.Who == WhoClinic {
			a, err := l.Accounts.AccountByID(ctx, id)
			switch {
			case errors.Is(err, identity.ErrNoAccount) || err != nil:
				r.Name = ""
			case a.PatientID == q.Patient:
				r = Row{Who: WhoYou}
			case a.Kind == identity.Staff:
				r.Name = a.StaffRole
				if a.DisplayName != "" {
					r.Name = a.DisplayName + ", " + a.StaffRole
				}
			}
		}
		names[user] = r
		return r
	}
	apps := map[string]string{}
	app := func(id string) string {
		name, ok := apps[id]
		if !ok {
			if l.AppName != nil {
				name = l.AppName(ctx, id)
			}
			if name == "" {
				name = id
			}
			apps[id] = name
		}
		return name
	}
	out := &Page{}
	before, scanned := q.Before, 0
	for len(out.Rows) < PageSize && scanned < scanLimit {
		entries, err := audit.PatientTrail(ctx, l.DB, audit.TrailQuery{Patient: "Patient/" + q.Patient, From: q.From, To: q.To, Before: before, Limit: 200})
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			scanned++
			before = e.Seq
			r, ok := row(e, who, app)
			if !ok || (q.Who != "" && r.Who != q.Who) {
				continue
			}
			out.Rows = append(out.Rows, r)
			if len(out.Rows) == PageSize {
				out.Next = e.Seq
				return out, nil
			}
		}
		if len(entries) < 200 {
			return out, nil
		}
	}
	out.Next = before // scanned enough for one request: the rest is on the next page
	return out, nil
}

// row turns a trail entry into a row; false for records a patient's log
// does not show (sign-in steps and other account housekeeping).
func row(e audit.Entry, who func(string) Row, app func(string) string) (Row, bool) {
	r := Row{When: e.Recorded, Refused: e.Outcome != audit.Success, View: e.View, Way: WayPortal}
	switch {
	case e.User != "":
		w := who(e.User)
		r.Who, r.Name = w.Who, w.Name
	case e.Client != "":
		r.Who, r.Name = WhoApp, e.Client
	default:
		r.Who = WhoClinic
	}
	switch {
	case strings.HasPrefix(e.Client, "shl-"):
		r.Who, r.Name, r.Way = WhoLink, "", WayLink // a share link, read by whoever holds it
	case e.Client != "" && strings.HasPrefix(e.Client, "carefront"):
		r.Who, r.Name, r.Way = WhoClinic, "", WayClinic // the clinic's own tools and imports
	case e.Client != "" && strings.HasPrefix(e.Reason, "app-"):
		r.Way = WayPortal // a person connecting or disconnecting an app, named as they are
	case e.Client != "":
		// An app's read, named as the app, with who connected it.
		r.By, r.ByName = r.Who, r.Name
		r.Who, r.Name, r.Way = WhoApp, app(e.Client), WayApp
	case r.Who == WhoClinic:
		r.Way = WayClinic
	}
	sub := func(c string) bool { return slices.Contains(e.Subtypes, c) }
	switch {
	case e.Type == "110106":
		r.What = "downloaded"
	case e.Type == "110107":
		r.What = "records-added"
	case sub("view"):
		r.What = "viewed"
	case sub("read") || sub("vread") || sub("search") || sub("history-instance"):
		r.What = "looked-up"
	case sub("policy-change"):
		r.What = "settings"
		if strings.HasPrefix(e.Reason, "proxy-") || strings.HasPrefix(e.Reason, "app-") || e.Reason == "caregiver-not-permitted" {
			r.What = "sharing"
		}
	case sub("account-activation") || sub("account-create") || sub("account-invite"):
		r.What = "account"
	default:
		return Row{}, false
	}
	for _, k := range access.KindNames {
		for _, t := range access.DataKinds[k] {
			if slices.Contains(e.DataTypes, t) && !slices.Contains(r.Kinds, k) {
				r.Kinds = append(r.Kinds, k)
			}
		}
	}
	return r, true
}
