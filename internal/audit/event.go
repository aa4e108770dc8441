// Package audit appends carefront's audit trail: every security-relevant and
// every PHI access event, shaped as an IHE Basic Audit Log Patterns (BALP)
// AuditEvent, stored append-only in a SHA-256 hash chain with checkpoints
// signed by an Ed25519 key, and verified end to end by Verify.
//
// Records hold ids and codes only. The package never stores resource bodies,
// search values or free text: Record fields are validated against patterns
// that admit references, codes and network addresses, nothing else.
package audit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Coding is a FHIR Coding: a code from a code system.
type Coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// Code systems used by the BALP shapes.
const (
	sysDICOM        = "http://dicom.nema.org/resources/ontology/DCM"
	sysEventType    = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysRESTful      = "http://hl7.org/fhir/restful-interaction"
	sysParticipant  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysEntityType   = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole   = "http://terminology.hl7.org/CodeSystem/object-role"
	sysSourceType   = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysBALPEntity   = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	sysCarefrontEvt = "https://carefront.example/CodeSystem/audit-subtype"
)

// Event types and subtypes in common use.
var (
	TypeApplicationActivity = Coding{sysDICOM, "110100", "Application Activity"}
	TypeUserAuthentication  = Coding{sysDICOM, "110114", "User Authentication"}
	TypeSecurityAlert       = Coding{sysDICOM, "110113", "Security Alert"}
	TypeRESTful             = Coding{sysEventType, "rest", "RESTful Operation"}
	TypeExport              = Coding{sysDICOM, "110106", "Export"}
	TypeImport              = Coding{sysDICOM, "110107", "Import"}

	SubtypeApplicationStart = Coding{sysDICOM, "110120", "Application Start"}
	SubtypeApplicationStop  = Coding{sysDICOM, "110121", "Application Stop"}
	SubtypeLogin            = Coding{sysDICOM, "110122", "Login"}
	SubtypeLogout           = Coding{sysDICOM, "110123", "Logout"}
	SubtypeRead             = Coding{sysRESTful, "read", ""}
	SubtypeVRead            = Coding{sysRESTful, "vread", ""}
	SubtypeSearch           = Coding{sysRESTful, "search", ""}
	SubtypeCreate           = Coding{sysRESTful, "create", ""}
	SubtypeUpdate           = Coding{sysRESTful, "update", ""}
	SubtypeDelete           = Coding{sysRESTful, "delete", ""}
	SubtypeHistory          = Coding{sysRESTful, "history-instance", ""}
	SubtypeKeyRotation      = Coding{sysCarefrontEvt, "key-rotation", "Key Rotation"}
	SubtypeAccountInvite    = Coding{sysCarefrontEvt, "account-invite", "Account Invitation"}
	SubtypePasswordReset    = Coding{sysCarefrontEvt, "password-reset", "Password Reset"}
	// SubtypeAuthStep is a step of a sign-in that is not yet one (the
	// password right, a code sent): only a completed sign-in is a Login.
	SubtypeAuthStep   = Coding{sysCarefrontEvt, "authentication-step", "Authentication Step"}
	SubtypeActivation = Coding{sysCarefrontEvt, "account-activation", "Account Activation"}
	SubtypeAccountNew = Coding{sysCarefrontEvt, "account-create", "Account Creation"}
	// SubtypeAccountChange is a change to how an account signs in (a
	// factor, the password, the email address).
	SubtypeAccountChange = Coding{sysCarefrontEvt, "account-change", "Account Change"}
	// SubtypeSession is a browser session started or given a new id.
	SubtypeSession = Coding{sysCarefrontEvt, "session", "Session"}
	// SubtypePolicyChange is a change to who may see what of a patient's
	// record (their release of results; later consent and proxy grants).
	SubtypePolicyChange = Coding{sysCarefrontEvt, "policy-change", "Access Policy Change"}
	// SubtypeClientRegistry is a change of the apps registered to connect
	// through SMART on FHIR (added, disabled).
	SubtypeClientRegistry = Coding{sysCarefrontEvt, "client-registry", "App Registration"}
	// SubtypeTokenIssue is tokens issued to an app (a code exchanged, a
	// refresh token rotated).
	SubtypeTokenIssue = Coding{sysCarefrontEvt, "token-issue", "Token Issue"}
	// SubtypeMessagePool is a change of the clinic's messaging pools (a
	// pool added, a staff member made to answer one).
	SubtypeMessagePool = Coding{sysCarefrontEvt, "message-pool", "Message Pool Change"}
	// SubtypeView is a portal page or view of a patient's record: one
	// record per request, naming the view (ViewCoding) and the kinds of
	// data it showed (Record.DataTypes).
	SubtypeView = Coding{sysCarefrontEvt, "view", "Portal View"}
)

// sysView names the portal's views.
const sysView = "https://carefront.example/CodeSystem/portal-view"

// ViewCoding names one portal view (home, results, ...) as a subtype.
func ViewCoding(name string) Coding { return Coding{System: sysView, Code: name} }

// Action is what was done to the data (FHIR AuditEventAction).
type Action string

// The actions.
const (
	Create  Action = "C"
	Read    Action = "R"
	Update  Action = "U"
	Delete  Action = "D"
	Execute Action = "E"
)

// Outcome is how it ended (FHIR AuditEventOutcome).
type Outcome string

// The outcomes.
const (
	Success        Outcome = "0"
	MinorFailure   Outcome = "4" // e.g. denied, bad input
	SeriousFailure Outcome = "8"
	MajorFailure   Outcome = "12"
)

// Entity names one data item touched by the event.
type Entity struct {
	What string // a reference like "Observation/abc"
	Type Coding // zero means System Object
	Role Coding // zero means Domain Resource
}

// Record is what a caller says happened. The writer shapes it into a BALP
// AuditEvent. Every field is an id, a code or an address: never free text.
type Record struct {
	Type    Coding
	Subtype []Coding
	Action  Action
	Outcome Outcome
	// Reason is a code for the outcome, e.g. "consent-denied"; never prose.
	Reason string

	User string // reference to the person acting, e.g. "Patient/123"
	// UserName and UserRole name a staff member acting (their name as
	// patients see it, and their role), kept in the user agent.
	UserName string
	UserRole string
	// UserHash stands for a person who named no account (a sign-in for an
	// address with no account): the hex keyed hash of the normalized
	// address, never the typed text.
	UserHash string
	Client   string // OAuth client id of the app acting, if any
	// Token is the id of the access token an app acted with (never the
	// token), kept as the user agent's policy (BALP's OAuth pattern); the
	// app is then also an agent of its own (110150 Application).
	Token    string
	Address  string // network address the request came from (the client's)
	OnBehalf string // reference to whom the user acts for, when not themself
	Patient  string // reference to the patient whose data it is
	Entities []Entity
	// Count, on an export, is how many resources it held.
	Count int
	// DataTypes are the kinds of data (FHIR resource types) a view showed,
	// each stored as an entity typed by resource type.
	DataTypes []string
	// Query is a search as "Type?param=value&...": it is stored as a BALP
	// query entity, base64, with the values of identifying parameters
	// (names, birth date, identifiers, addresses, telecom) replaced by
	// "redacted".
	Query string
	// RequestID ties the record to the request's log lines; when empty the
	// writer takes it from the context (telemetry.RequestID).
	RequestID string
	// Session is the hex SHA-256 of the browser session's id (never the
	// id itself), so an auditor can group one sign-in's events.
	Session string
}

// The BALP wire shape, a FHIR R4 AuditEvent. Field order is fixed by the
// struct, so json.Marshal gives the same bytes for the same event.
type event struct {
	ResourceType string   `json:"resourceType"`
	Type         Coding   `json:"type"`
	Subtype      []Coding `json:"subtype,omitempty"`
	Action       Action   `json:"action"`
	Recorded     string   `json:"recorded"`
	Outcome      Outcome  `json:"outcome"`
	OutcomeDesc  string   `json:"outcomeDesc,omitempty"`
	Agent        []agent  `json:"agent"`
	Source       source   `json:"source"`
	Entity       []entity `json:"entity,omitempty"`
}

type reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

type network struct {
	Address string `json:"address"`
	Type    string `json:"type"`
}

type agent struct {
	Type      concept   `json:"type"`
	Role      []concept `json:"role,omitempty"`
	Who       reference `json:"who"`
	Requestor bool      `json:"requestor"`
	Network   *network  `json:"network,omitempty"`
	Policy    []string  `json:"policy,omitempty"`
}

// sysStaffRole names carefront's staff roles in an agent's role.
const sysStaffRole = "https://carefront.example/CodeSystem/staff-role"

type concept struct {
	Coding []Coding `json:"coding"`
}

type source struct {
	Observer reference `json:"observer"`
	Type     []Coding  `json:"type"`
}

type entity struct {
	What   *reference `json:"what,omitempty"`
	Type   *Coding    `json:"type,omitempty"`
	Role   *Coding    `json:"role,omitempty"`
	Query  string     `json:"query,omitempty"`
	Detail []detail   `json:"detail,omitempty"`
}

type detail struct {
	Type        string `json:"type"`
	ValueString string `json:"valueString"`
}

// identifyingParams are search parameters whose values name or locate a
// person; a query entity keeps the parameter and redacts its value.
var identifyingParams = []string{"name", "family", "given", "birthdate", "identifier", "address", "telecom", "email", "phone", "phonetic"}

// redactQuery checks "Type?params" and replaces the values of identifying
// parameters (and address-city, address-postalcode, ...) with "redacted".
func redactQuery(q string) (string, error) {
	typ, raw, _ := strings.Cut(q, "?")
	if !queryType.MatchString(typ) {
		return "", fmt.Errorf("audit: query must be Type?params")
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return "", fmt.Errorf("audit: query parameters do not parse")
	}
	for k, vs := range vals {
		if identifying(k) {
			for i := range vs {
				vs[i] = "redacted"
			}
		}
	}
	return typ + "?" + vals.Encode(), nil
}

// identifying reports whether a search parameter names an identifying
// element anywhere in it: plain (family), with a modifier (given:exact),
// chained (subject:Patient.name) or reversed (_has:Observation:patient:...).
func identifying(key string) bool {
	for _, part := range strings.FieldsFunc(strings.ToLower(key), func(r rune) bool { return r == ':' || r == '.' }) {
		for _, p := range identifyingParams {
			if part == p || strings.HasPrefix(part, p+"-") {
				return true
			}
		}
	}
	return false
}

// Participant roles by interaction, as BALP assigns them: data flows to
// the client on a read (the client is the destination), from it on a
// search, create or update (the source).
var (
	roleSource      = Coding{sysDICOM, "110153", "Source Role ID"}
	roleDestination = Coding{sysDICOM, "110152", "Destination Role ID"}
	roleApplication = Coding{sysDICOM, "110150", "Application"}
	roleCustodian   = Coding{"http://terminology.hl7.org/CodeSystem/provenance-participant-type", "custodian", "Custodian"}
	userRecipient   = Coding{sysParticipant, "IRCP", "information recipient"}
	userAuthor      = Coding{sysParticipant, "AUT", "author"}
)

// participantRoles returns the client's, the server's and the user's
// agent types for an event's subtypes.
func participantRoles(sub []Coding) (client, server, user Coding) {
	for _, c := range sub {
		if c.System != sysRESTful {
			continue
		}
		switch c.Code {
		case "read", "vread", "history-instance":
			return roleDestination, roleSource, userRecipient
		case "delete":
			return roleApplication, roleCustodian, userAuthor
		case "create", "update", "patch":
			return roleSource, roleDestination, userAuthor
		}
	}
	return roleSource, roleDestination, userRecipient
}

// shape validates r and builds its wire form. recorded is the time stamp;
// observer names this server.
func shape(r Record, recorded time.Time, observer string) (event, error) {
	if err := checkCoding("type", r.Type); err != nil {
		return event{}, err
	}
	for _, c := range r.Subtype {
		if err := checkCoding("subtype", c); err != nil {
			return event{}, err
		}
	}
	switch r.Action {
	case Create, Read, Update, Delete, Execute:
	default:
		return event{}, fmt.Errorf("audit: action %q is not C, R, U, D or E", r.Action)
	}
	switch r.Outcome {
	case Success, MinorFailure, SeriousFailure, MajorFailure:
	default:
		return event{}, fmt.Errorf("audit: outcome %q is not 0, 4, 8 or 12", r.Outcome)
	}
	if r.Reason != "" && !codePattern.MatchString(r.Reason) {
		return event{}, fmt.Errorf("audit: reason must be a code, not text")
	}
	if len(r.UserName) > 100 || strings.ContainsFunc(r.UserName, unicode.IsControl) {
		return event{}, fmt.Errorf("audit: user name must be a short line of text")
	}
	if r.UserHash != "" && !sessionPattern.MatchString(r.UserHash) {
		return event{}, fmt.Errorf("audit: user hash must be a hex SHA-256")
	}
	for name, ref := range map[string]string{"user": r.User, "on-behalf-of": r.OnBehalf, "patient": r.Patient} {
		if ref != "" && !refPattern.MatchString(ref) {
			return event{}, fmt.Errorf("audit: %s must be a reference like Patient/123", name)
		}
	}
	if r.Token != "" && !tokenPattern.MatchString(r.Token) {
		return event{}, fmt.Errorf("audit: token must be a token id")
	}
	if r.Client != "" && !clientPattern.MatchString(r.Client) {
		return event{}, fmt.Errorf("audit: client must be a client id")
	}
	if r.Session != "" && !sessionPattern.MatchString(r.Session) {
		return event{}, fmt.Errorf("audit: session must be a hex SHA-256")
	}
	if r.RequestID != "" && !reqIDPattern.MatchString(r.RequestID) {
		return event{}, fmt.Errorf("audit: request id has characters outside [A-Za-z0-9._-]")
	}
	ev := event{
		ResourceType: "AuditEvent",
		Type:         r.Type,
		Subtype:      r.Subtype,
		Action:       r.Action,
		Recorded:     recorded.UTC().Format("2006-01-02T15:04:05.000Z"),
		Outcome:      r.Outcome,
		OutcomeDesc:  r.Reason,
		Source: source{
			Observer: reference{Display: observer},
			Type:     []Coding{{sysSourceType, "4", "Application Server"}},
		},
	}
	var addr *network
	if r.Address != "" {
		a, err := netip.ParseAddr(r.Address)
		if err != nil {
			return event{}, fmt.Errorf("audit: address must be an IP address")
		}
		addr = &network{Address: a.String(), Type: "2"}
	}
	clientRole, serverRole, userRole := participantRoles(r.Subtype)
	// BALP: the user is the requestor and carries no network address; the
	// client (the browser or app, where the address belongs) and the
	// server are the two ends of the exchange.
	hasUser := r.User != "" || r.UserHash != ""
	switch {
	case r.User != "":
		a := agent{Type: concept{[]Coding{userRole}}, Who: reference{Reference: r.User, Display: r.UserName}, Requestor: true}
		if r.UserRole != "" {
			if !codePattern.MatchString(r.UserRole) {
				return event{}, fmt.Errorf("audit: user role must be a code")
			}
			a.Role = []concept{{[]Coding{{System: sysStaffRole, Code: r.UserRole}}}}
		}
		if r.Token != "" {
			a.Policy = []string{"urn:carefront:access-token:" + r.Token}
		}
		ev.Agent = append(ev.Agent, a)
	case r.UserHash != "":
		ev.Agent = append(ev.Agent, agent{Type: concept{[]Coding{userRole}},
			Who: reference{Identifier: &identifier{System: "urn:carefront:email-hmac-sha256", Value: r.UserHash}}, Requestor: true})
	}
	if r.Client != "" || addr != nil {
		who := reference{Display: "web browser"}
		if r.Client != "" {
			who = reference{Identifier: &identifier{System: "urn:carefront:client", Value: r.Client}}
		}
		ev.Agent = append(ev.Agent, agent{Type: concept{[]Coding{clientRole}}, Who: who, Requestor: !hasUser, Network: addr})
	}
	if r.Client != "" && r.Token != "" {
		// BALP (OAuth): the app the token was issued to, as an agent.
		ev.Agent = append(ev.Agent, agent{Type: concept{[]Coding{roleApplication}},
			Who: reference{Identifier: &identifier{System: "urn:carefront:client", Value: r.Client}}})
	}
	ev.Agent = append(ev.Agent, agent{
		Type:      concept{[]Coding{serverRole}},
		Who:       reference{Display: observer},
		Requestor: !hasUser && r.Client == "" && addr == nil,
	})
	if r.Patient != "" {
		ev.Entity = append(ev.Entity, entity{
			What: &reference{Reference: r.Patient},
			Type: &Coding{sysEntityType, "1", "Person"},
			Role: &Coding{sysObjectRole, "1", "Patient"},
		})
	}
	if r.OnBehalf != "" && r.OnBehalf != r.User {
		ev.Entity = append(ev.Entity, entity{
			What: &reference{Reference: r.OnBehalf},
			Type: &Coding{sysEntityType, "1", "Person"},
			Role: &Coding{sysObjectRole, "6", "User"},
		})
	}
	for _, e := range r.Entities {
		if !refPattern.MatchString(e.What) {
			return event{}, fmt.Errorf("audit: entity must be a reference like Observation/123")
		}
		t, role := e.Type, e.Role
		if t == (Coding{}) {
			t = Coding{sysEntityType, "2", "System Object"}
		}
		if role == (Coding{}) {
			role = Coding{sysObjectRole, "4", "Domain Resource"}
		}
		if err := checkCoding("entity type", t); err != nil {
			return event{}, err
		}
		if err := checkCoding("entity role", role); err != nil {
			return event{}, err
		}
		ev.Entity = append(ev.Entity, entity{What: &reference{Reference: e.What}, Type: &t, Role: &role})
	}
	for _, t := range r.DataTypes {
		if !queryType.MatchString(t) {
			return event{}, fmt.Errorf("audit: data type must be a resource type")
		}
		ev.Entity = append(ev.Entity, entity{
			Type: &Coding{"http://hl7.org/fhir/resource-types", t, ""},
			Role: &Coding{sysObjectRole, "4", "Domain Resource"},
		})
	}
	if r.Count > 0 {
		ev.Entity = append(ev.Entity, entity{
			Type:   &Coding{sysEntityType, "2", "System Object"},
			Role:   &Coding{sysObjectRole, "3", "Report"},
			Detail: []detail{{Type: "resource-count", ValueString: strconv.Itoa(r.Count)}},
		})
	}
	if r.Query != "" {
		q, err := redactQuery(r.Query)
		if err != nil {
			return event{}, err
		}
		ev.Entity = append(ev.Entity, entity{
			Type:  &Coding{sysEntityType, "2", "System Object"},
			Role:  &Coding{sysObjectRole, "24", "Query"},
			Query: base64.StdEncoding.EncodeToString([]byte(q)),
		})
	}
	if r.RequestID != "" {
		ev.Entity = append(ev.Entity, entity{
			What: &reference{Identifier: &identifier{Value: r.RequestID}},
			Type: &Coding{sysBALPEntity, "XrequestId", "X-Request-Id"},
		})
	}
	if r.Session != "" {
		ev.Entity = append(ev.Entity, entity{
			What: &reference{Identifier: &identifier{System: "urn:carefront:session-sha256", Value: r.Session}},
			Type: &Coding{sysCarefrontEvt, "session", "Session"},
		})
	}
	return ev, nil
}

func checkCoding(what string, c Coding) error {
	if _, ok := codingsOK.Load(c); ok {
		return nil
	}
	if !systemPattern.MatchString(c.System) || !codePattern.MatchString(c.Code) || !displayPattern.MatchString(c.Display) {
		return fmt.Errorf("audit: %s must be a coding of system, code and a short display", what)
	}
	if codingsOKN.Load() < maxCodingsOK {
		if _, loaded := codingsOK.LoadOrStore(c, struct{}{}); !loaded {
			codingsOKN.Add(1)
		}
	}
	return nil
}

// codingsOK remembers codings that passed checkCoding: records use a few
// dozen, and matching them again costs a third of shaping a record.
var (
	codingsOK  sync.Map // Coding -> struct{}
	codingsOKN atomic.Int64
)

const maxCodingsOK = 1024

// columns are the indexed copies of an event's fields. Verify checks they
// agree with the hashed event, so an edit of a column alone is caught too.
type columns struct {
	Recorded  string
	TypeCode  string
	Action    string
	Outcome   string
	Patient   string
	RequestID string
}

func columnsOf(ev event) columns {
	c := columns{
		Recorded: ev.Recorded,
		TypeCode: ev.Type.System + "|" + ev.Type.Code,
		Action:   string(ev.Action),
		Outcome:  string(ev.Outcome),
	}
	for _, e := range ev.Entity {
		if e.Role != nil && e.Role.System == sysObjectRole && e.Role.Code == "1" && e.What != nil {
			c.Patient = e.What.Reference
		}
		if e.Type != nil && e.Type.Code == "XrequestId" && e.What != nil && e.What.Identifier != nil {
			c.RequestID = e.What.Identifier.Value
		}
	}
	return c
}

func parseEvent(b []byte) (event, error) {
	var ev event
	err := json.Unmarshal(b, &ev)
	return ev, err
}
