// Package config builds carefront's one typed Config from command-line flags
// and CAREFRONT_* environment variables (secrets also from CAREFRONT_*_FILE),
// and validates it so that a bad setting stops the start with one line that
// names the setting and the fix.
//
// It never logs or prints the value of a secret setting.
package config

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting carefront reads at start.
type Config struct {
	Addr            string        // listen address of the portal
	MetricsAddr     string        // listen address of Prometheus metrics; empty disables
	DataDir         string        // folder for the SQLite database and generated keys
	DatabaseURL     string        // postgres://... ; empty means SQLite in DataDir
	BaseURL         string        // public URL of the portal, e.g. https://portal.example.org
	Env             string        // "development" or "production"
	Demo            bool          // seed and show demo data
	TLSCertFile     string        // PEM certificate chain; with TLSKeyFile enables HTTPS
	TLSKeyFile      string        // PEM private key
	LogLevel        slog.Level    // minimum level written to the log
	MaxBodyBytes    int64         // largest accepted request body
	ShutdownTimeout time.Duration // how long in-flight requests may finish on SIGTERM
	Keyset          string        // Tink AEAD keyset as JSON; empty means DataDir/keyset.json
	AuditSigningKey string        // base64 Ed25519 seed; empty means DataDir/audit-signing.key
	DurableCommits  bool          // wait for commits to reach disk before answering
	AuditCheckpoint int           // sign a checkpoint at least every this many audit records
	// AuditCheckpointInterval signs a checkpoint at least this often while
	// records are written; AuditVerifyInterval is how often serve verifies
	// the whole trail (0: never).
	AuditCheckpointInterval time.Duration
	AuditVerifyInterval     time.Duration
	SessionIdle             time.Duration  // a person's session ends after this long without a request
	StepUpAge               time.Duration  // sensitive changes need a second factor this recent
	AccessTokenTTL          time.Duration  // an app's access token lasts this long (5-15 minutes)
	RefreshTokenTTL         time.Duration  // an app's refresh tokens stop working this long after it was connected
	DynamicRegistration     bool           // apps may register themselves (RFC 7591), shown as not reviewed
	GeoIPDB                 string         // path of a MaxMind-format City or Country database; empty shows no places
	ResultsDictionary       string         // path of a clinic's plain-language test dictionary (JSON); empty uses the built-in one
	ClinicTimeZone          *time.Location // the clinic's time zone: dates the clinic gives (a grant's last day) are days there
	CareMonths              int            // how far back a visit with a clinician makes a care relationship
	OfficeHours             string         // when the care teams read messages, in the clinic's time zone ("Mon-Fri 08:00-17:00", or "always")
	VisitChangeBefore       time.Duration  // visits can be cancelled or moved online until this long before they start
	VisitMaxUpcoming        int            // visits ahead a patient may hold booked online at once
	VisitJoinEarly          time.Duration  // a video visit can be joined this long before it starts
	VisitJoinGrace          time.Duration  // ... until this long after its planned end
	// TURN for video visits: the embedded server (TURNListen, empty
	// disables it) and/or a clinic's own coturn (TURNURLs), both with
	// time-limited credentials from the shared secret in TURNSecretFile.
	TURNListen     string
	TURNPublicIP   netip.Addr
	TURNRealm      string
	TURNSecretFile string
	TURNURLs       []string
	// VideoProvider carries video visits' media: "embedded" (browser
	// to browser) or "livekit" (a LiveKit server at LiveKitURL).
	VideoProvider        string
	LiveKitURL           string
	LiveKitAPIKey        string
	LiveKitAPISecretFile string
	CheckInForms         string   // kind of visit -> pre-visit Questionnaire id ("follow-up=previsit-1, new-concern=previsit-2")
	TeenAge, AdultAge    int      // a parent's access: sensitive records hidden from TeenAge, ended at AdultAge
	Part2Sources         []string // record sources under 42 CFR Part 2
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	SMTPAddr       string // host:port of the mail server; empty keeps mail in a development outbox
	SMTPFrom       string // sender address of carefront's mail
	SMTPUsername   string
	SMTPPassword   string

	// Upstream EHR mode: clinical data comes from this FHIR R4 server.
	FHIRUpstream         string // base URL; empty uses the embedded store
	FHIRUpstreamToken    string // static bearer token
	FHIRUpstreamClientID string // SMART Backend Services client id
	FHIRUpstreamKey      string // PEM private key (ES384 P-384 or RS384 RSA) for the client assertion
	FHIRUpstreamKeyID    string // the key's kid at the EHR
	FHIRUpstreamTokenURL string // token endpoint; empty reads .well-known/smart-configuration
	FHIRUpstreamScope    string // scope asked for
}

// TLS reports whether the portal serves HTTPS itself.
func (c Config) TLS() bool { return c.TLSCertFile != "" }

// Production reports whether carefront runs for real patients.
func (c Config) Production() bool { return c.Env == "production" }

// Setting describes one configuration setting, for flags, help and docs.
type Setting struct {
	Flag    string
	Env     string
	Default string
	Usage   string
	Secret  bool // also readable from Env+"_FILE"; never printed
	parse   func(c *Config, v string) error
}

// Settings lists every setting in the order the README documents them.
func Settings() []Setting {
	return []Setting{
		{Flag: "addr", Env: "CAREFRONT_ADDR", Default: "127.0.0.1:8080",
			Usage: "address the portal listens on (host:port)",
			parse: func(c *Config, v string) error { c.Addr = v; return checkHostPort(v, false) }},
		{Flag: "metrics-addr", Env: "CAREFRONT_METRICS_ADDR", Default: "127.0.0.1:9090",
			Usage: "address of the Prometheus metrics listener; empty disables it",
			parse: func(c *Config, v string) error {
				if v == "off" {
					v = ""
				}
				c.MetricsAddr = v
				return checkHostPort(v, true)
			}},
		{Flag: "data-dir", Env: "CAREFRONT_DATA_DIR", Default: "./carefront-data",
			Usage: "folder for the embedded SQLite database and generated keys (created if absent)",
			parse: func(c *Config, v string) error {
				if strings.TrimSpace(v) == "" {
					return errors.New("must not be empty; name a writable folder")
				}
				c.DataDir = v
				return nil
			}},
		{Flag: "database-url", Env: "CAREFRONT_DATABASE_URL", Default: "", Secret: true,
			Usage: "PostgreSQL URL (postgres://user@host/db); empty uses embedded SQLite in the data dir",
			parse: func(c *Config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
		{Flag: "base-url", Env: "CAREFRONT_BASE_URL", Default: "",
			Usage: "public URL of the portal (required in production, must be https there)",
			parse: func(c *Config, v string) error { c.BaseURL = strings.TrimSuffix(v, "/"); return checkBaseURL(v) }},
		{Flag: "env", Env: "CAREFRONT_ENV", Default: "development",
			Usage: "development or production",
			parse: func(c *Config, v string) error {
				if v != "development" && v != "production" {
					return errors.New("must be development or production")
				}
				c.Env = v
				return nil
			}},
		{Flag: "demo", Env: "CAREFRONT_DEMO", Default: "false",
			Usage: "seed synthetic demo data and show the demo banner (refused in production)",
			parse: func(c *Config, v string) (err error) { c.Demo, err = parseBool(v); return err }},
		{Flag: "tls-cert", Env: "CAREFRONT_TLS_CERT_FILE", Default: "",
			Usage: "PEM certificate chain file; with --tls-key serves HTTPS (TLS 1.2 minimum)",
			parse: func(c *Config, v string) error { c.TLSCertFile = v; return checkReadable(v) }},
		{Flag: "tls-key", Env: "CAREFRONT_TLS_KEY_FILE", Default: "",
			Usage: "PEM private key file for --tls-cert",
			parse: func(c *Config, v string) error { c.TLSKeyFile = v; return checkReadable(v) }},
		{Flag: "log-level", Env: "CAREFRONT_LOG_LEVEL", Default: "info",
			Usage: "debug, info, warn or error",
			parse: func(c *Config, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return errors.New("must be debug, info, warn or error")
				}
				return nil
			}},
		{Flag: "max-body", Env: "CAREFRONT_MAX_BODY_BYTES", Default: "1MiB",
			Usage: "largest request body accepted (bytes, or with KiB/MiB); larger ones get 413",
			parse: func(c *Config, v string) (err error) { c.MaxBodyBytes, err = parseSize(v); return err }},
		{Flag: "shutdown-timeout", Env: "CAREFRONT_SHUTDOWN_TIMEOUT", Default: "30s",
			Usage: "how long in-flight requests may finish after SIGTERM",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 || d > 10*time.Minute {
					return errors.New("must be a duration between 1s and 10m, like 30s")
				}
				c.ShutdownTimeout = d
				return nil
			}},
		{Flag: "keyset", Env: "CAREFRONT_KEYSET", Default: "", Secret: true,
			Usage: "Tink AEAD keyset (JSON) for encryption at rest; empty uses keyset.json in the data dir",
			parse: func(c *Config, v string) error { c.Keyset = v; return nil }},
		{Flag: "audit-signing-key", Env: "CAREFRONT_AUDIT_SIGNING_KEY", Default: "", Secret: true,
			Usage: "base64 Ed25519 seeds (oldest first; the last signs) for audit checkpoints and record MACs; empty uses audit-signing.key in the data dir",
			parse: func(c *Config, v string) error { c.AuditSigningKey = v; return checkSigningKey(v) }},
		{Flag: "durable-commits", Env: "CAREFRONT_DURABLE_COMMITS", Default: "true",
			Usage: "wait for every commit, audit records included, to reach disk before answering; false risks losing the last writes on power loss (benchmarks only)",
			parse: func(c *Config, v string) (err error) { c.DurableCommits, err = parseBool(v); return err }},
		{Flag: "audit-checkpoint-every", Env: "CAREFRONT_AUDIT_CHECKPOINT_EVERY", Default: "1000",
			Usage: "sign an audit checkpoint at least every this many records (and at shutdown)",
			parse: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 1_000_000 {
					return errors.New("must be a whole number from 1 to 1000000")
				}
				c.AuditCheckpoint = n
				return nil
			}},
		{Flag: "audit-checkpoint-interval", Env: "CAREFRONT_AUDIT_CHECKPOINT_INTERVAL", Default: "10s",
			Usage: "sign an audit checkpoint at least this often while records are written; audit verify fails on older unsigned records",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Second || d > 10*time.Minute {
					return errors.New("must be a duration between 1s and 10m, like 10s")
				}
				c.AuditCheckpointInterval = d
				return nil
			}},
		{Flag: "audit-verify-interval", Env: "CAREFRONT_AUDIT_VERIFY_INTERVAL", Default: "1h",
			Usage: "how often the server verifies the whole audit trail (result in the log and the carefront_audit_verify_ok metric); off disables",
			parse: func(c *Config, v string) error {
				if v == "off" {
					c.AuditVerifyInterval = 0
					return nil
				}
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Minute || d > 7*24*time.Hour {
					return errors.New("must be a duration between 1m and 168h, like 1h, or off")
				}
				c.AuditVerifyInterval = d
				return nil
			}},
		{Flag: "session-idle", Env: "CAREFRONT_SESSION_IDLE", Default: "15m",
			Usage: "sign a person out after this long without activity (a warning shows 2 minutes before); staff always after 10m",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 3*time.Minute || d > 12*time.Hour {
					return errors.New("must be a duration between 3m and 12h, like 15m")
				}
				c.SessionIdle = d
				return nil
			}},
		{Flag: "step-up-age", Env: "CAREFRONT_STEP_UP_AGE", Default: "5m",
			Usage: "sensitive changes (email, password, passkeys, recovery codes) need a second-factor check this recent",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 10*time.Second || d > 30*time.Minute {
					return errors.New("must be a duration between 10s and 30m, like 5m")
				}
				c.StepUpAge = d
				return nil
			}},
		{Flag: "access-token-ttl", Env: "CAREFRONT_ACCESS_TOKEN_TTL", Default: "10m",
			Usage: "how long an access token issued to a SMART app lasts",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 5*time.Minute || d > 15*time.Minute {
					return errors.New("must be a duration between 5m and 15m, like 10m")
				}
				c.AccessTokenTTL = d
				return nil
			}},
		{Flag: "refresh-token-ttl", Env: "CAREFRONT_REFRESH_TOKEN_TTL", Default: "2160h",
			Usage: "how long after a person connects an app (with offline_access) its refresh tokens work; then the app must ask again (2160h is 90 days)",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Hour || d > 366*24*time.Hour {
					return errors.New("must be a duration between 1h and 8784h (366 days), like 2160h")
				}
				c.RefreshTokenTTL = d
				return nil
			}},
		{Flag: "dynamic-client-registration", Env: "CAREFRONT_DYNAMIC_CLIENT_REGISTRATION", Default: "false",
			Usage: "let apps register themselves at /oauth/register (RFC 7591); patients see them as not reviewed by the clinic",
			parse: func(c *Config, v string) (err error) { c.DynamicRegistration, err = parseBool(v); return err }},
		{Flag: "trusted-proxies", Env: "CAREFRONT_TRUSTED_PROXIES", Default: "",
			Usage: "load balancers and proxies in front of carefront, as addresses or CIDR ranges separated by commas (e.g. 10.0.0.0/8); the client address is the rightmost X-Forwarded-For hop that is not one of them, for rate limits, audit records and the session list; empty believes no X-Forwarded-For",
			parse: func(c *Config, v string) error {
				c.TrustedProxies = nil
				for _, f := range strings.Split(v, ",") {
					f = strings.TrimSpace(f)
					if f == "" {
						continue
					}
					p, err := netip.ParsePrefix(f)
					if err != nil {
						a, aerr := netip.ParseAddr(f)
						if aerr != nil {
							return fmt.Errorf("%q is not an address or CIDR range; use e.g. 10.0.0.0/8,192.0.2.10", f)
						}
						p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
					}
					c.TrustedProxies = append(c.TrustedProxies, p.Masked())
				}
				return nil
			}},
		{Flag: "geoip-db", Env: "CAREFRONT_GEOIP_DB", Default: "",
			Usage: "MaxMind-format City or Country database (e.g. GeoLite2-City.mmdb) to show each session's approximate place on the account security page; empty shows none",
			parse: func(c *Config, v string) error { c.GeoIPDB = v; return nil }},
		{Flag: "results-dictionary", Env: "CAREFRONT_RESULTS_DICTIONARY", Default: "",
			Usage: "JSON file of plain-language lines on what tests measure, by LOINC code, in English and Spanish, added over the built-in dictionary; empty uses the built-in one",
			parse: func(c *Config, v string) error { c.ResultsDictionary = v; return nil }},
		{Flag: "clinic-time-zone", Env: "CAREFRONT_CLINIC_TIME_ZONE", Default: "UTC",
			Usage: "the clinic's time zone (IANA name, e.g. America/Chicago): a date the clinic gives, such as a caregiver grant's last day, ends at midnight there",
			parse: func(c *Config, v string) error {
				loc, err := time.LoadLocation(v)
				if err != nil || v == "" || v == "Local" {
					return fmt.Errorf("must be an IANA time zone name like America/Chicago or UTC")
				}
				c.ClinicTimeZone = loc
				return nil
			}},
		{Flag: "part2-sources", Env: "CAREFRONT_PART2_SOURCES", Default: "",
			Usage: "record sources (meta.source URIs, comma-separated) of programs under 42 CFR Part 2: all their records are labelled Part 2 and go to no one but the patient without a consent naming the recipient",
			parse: func(c *Config, v string) error {
				c.Part2Sources = nil
				for _, u := range strings.Split(v, ",") {
					u = strings.TrimSpace(u)
					if u == "" {
						continue
					}
					if !strings.Contains(u, ":") || strings.ContainsAny(u, " \t") {
						return fmt.Errorf("%q is not a URI", u)
					}
					c.Part2Sources = append(c.Part2Sources, u)
				}
				return nil
			}},
		{Flag: "office-hours", Env: "CAREFRONT_OFFICE_HOURS", Default: "Mon-Fri 08:00-17:00",
			Usage: "when the care teams read messages, in the clinic's time zone: days and hours like \"Mon-Fri 08:00-17:00, Sat 09:00-12:00\"; a message written outside them gets an automatic reply saying when it will be read; \"always\" sends none",
			parse: func(c *Config, v string) error { c.OfficeHours = v; return nil }},
		{Flag: "visit-change-before", Env: "CAREFRONT_VISIT_CHANGE_BEFORE", Default: "24h",
			Usage: "patients can cancel or move a visit online until this long before it starts; later they are asked to call the clinic",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > 14*24*time.Hour {
					return errors.New("must be a duration from 0s to 336h, like 24h")
				}
				c.VisitChangeBefore = d
				return nil
			}},
		{Flag: "visit-max-upcoming", Env: "CAREFRONT_VISIT_MAX_UPCOMING", Default: "4",
			Usage: "how many visits still ahead a patient may hold booked online at once; to book more they cancel one or call the clinic",
			parse: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 50 {
					return errors.New("must be a number from 1 to 50")
				}
				c.VisitMaxUpcoming = n
				return nil
			}},
		{Flag: "visit-join-early", Env: "CAREFRONT_VISIT_JOIN_EARLY", Default: "15m",
			Usage: "a video visit can be joined (into its waiting room) from this long before it starts",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > 24*time.Hour {
					return errors.New("must be a duration from 0s to 24h, like 15m")
				}
				c.VisitJoinEarly = d
				return nil
			}},
		{Flag: "visit-join-grace", Env: "CAREFRONT_VISIT_JOIN_GRACE", Default: "30m",
			Usage: "a video visit can be joined until this long after its planned end (a visit running over)",
			parse: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > 24*time.Hour {
					return errors.New("must be a duration from 0s to 24h, like 30m")
				}
				c.VisitJoinGrace = d
				return nil
			}},
		{Flag: "turn-listen", Env: "CAREFRONT_TURN_LISTEN", Default: "",
			Usage: "UDP address of the embedded TURN server that relays video visits' media when browsers cannot reach each other directly, like 0.0.0.0:3478; empty runs none",
			parse: func(c *Config, v string) error {
				if v == "" {
					c.TURNListen = ""
					return nil
				}
				if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
					return errors.New("must be host:port, like 0.0.0.0:3478")
				}
				c.TURNListen = v
				return nil
			}},
		{Flag: "turn-public-ip", Env: "CAREFRONT_TURN_PUBLIC_IP", Default: "",
			Usage: "the IP address browsers reach the embedded TURN server at (its relay address); needed with --turn-listen",
			parse: func(c *Config, v string) error {
				if v == "" {
					c.TURNPublicIP = netip.Addr{}
					return nil
				}
				a, err := netip.ParseAddr(v)
				if err != nil {
					return errors.New("must be an IP address")
				}
				c.TURNPublicIP = a
				return nil
			}},
		{Flag: "turn-realm", Env: "CAREFRONT_TURN_REALM", Default: "carefront",
			Usage: "the TURN realm of the embedded server",
			parse: func(c *Config, v string) error {
				if v == "" || strings.ContainsAny(v, " \t\"") {
					return errors.New("must be a word, like carefront")
				}
				c.TURNRealm = v
				return nil
			}},
		{Flag: "turn-secret-file", Env: "CAREFRONT_TURN_SECRET_FILE", Default: "",
			Usage: "file holding the TURN REST shared secret (coturn's static-auth-secret), at least 16 bytes; needed with --turn-url and when several instances run TURN; empty with --turn-listen makes one at each start",
			parse: func(c *Config, v string) error { c.TURNSecretFile = v; return nil }},
		{Flag: "turn-url", Env: "CAREFRONT_TURN_URL", Default: "",
			Usage: "TURN servers of the clinic's own (coturn with use-auth-secret), as turn: or turns: URLs separated by commas; browsers are given time-limited credentials for them",
			parse: func(c *Config, v string) error {
				c.TURNURLs = nil
				for _, u := range strings.Split(v, ",") {
					u = strings.TrimSpace(u)
					if u == "" {
						continue
					}
					if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
						return fmt.Errorf("%q is not a turn: or turns: URL", u)
					}
					c.TURNURLs = append(c.TURNURLs, u)
				}
				return nil
			}},
		{Flag: "video-provider", Env: "CAREFRONT_VIDEO_PROVIDER", Default: "embedded",
			Usage: "what carries video visits' media: embedded (browser to browser, up to 4 people, in the one binary) or livekit (a LiveKit server beside carefront, for clinics that outgrow one machine; needs --livekit-url, --livekit-api-key and --livekit-api-secret-file)",
			parse: func(c *Config, v string) error {
				if v != "embedded" && v != "livekit" {
					return errors.New("must be embedded or livekit")
				}
				c.VideoProvider = v
				return nil
			}},
		{Flag: "livekit-url", Env: "CAREFRONT_LIVEKIT_URL", Default: "",
			Usage: "the LiveKit server's URL as browsers reach it (https:// or wss://); carefront calls its server API there too",
			parse: func(c *Config, v string) error {
				if v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "wss://") && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "ws://") {
					return errors.New("must be an https:// or wss:// URL")
				}
				c.LiveKitURL = v
				return nil
			}},
		{Flag: "livekit-api-key", Env: "CAREFRONT_LIVEKIT_API_KEY", Default: "",
			Usage: "the LiveKit API key carefront mints tokens and calls the server API with",
			parse: func(c *Config, v string) error { c.LiveKitAPIKey = v; return nil }},
		{Flag: "livekit-api-secret-file", Env: "CAREFRONT_LIVEKIT_API_SECRET_FILE", Default: "",
			Usage: "file holding that API key's secret (32 bytes or more)",
			parse: func(c *Config, v string) error { c.LiveKitAPISecretFile = v; return nil }},
		{Flag: "checkin-questionnaires", Env: "CAREFRONT_CHECKIN_QUESTIONNAIRES", Default: "",
			Usage: "the Questionnaire filled in at check-in for each kind of visit (the Appointment's service type code), as KIND=QUESTIONNAIRE-ID pairs separated by commas; a kind not named has none (--demo has its own)",
			parse: func(c *Config, v string) error { c.CheckInForms = v; return nil }},
		{Flag: "care-relationship-months", Env: "CAREFRONT_CARE_RELATIONSHIP_MONTHS", Default: "24",
			Usage: "how far back an appointment or visit with a clinician lets them read the patient's record (a care team membership always does)",
			parse: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 120 {
					return errors.New("must be a number of months from 1 to 120")
				}
				c.CareMonths = n
				return nil
			}},
		{Flag: "teen-age", Env: "CAREFRONT_TEEN_AGE", Default: "12",
			Usage: "the age from which a child's records with a sensitivity label (mental health, substance use, HIV, sexual health) are hidden from the parents and guardians the clinic gave access",
			parse: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 20 {
					return errors.New("must be an age in years from 1 to 20")
				}
				c.TeenAge = n
				return nil
			}},
		{Flag: "adult-age", Env: "CAREFRONT_ADULT_AGE", Default: "18",
			Usage: "the age at which a parent's or guardian's access to a child's record ends by itself, whatever its end date (both are told 30 days before)",
			parse: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 2 || n > 21 {
					return errors.New("must be an age in years from 2 to 21")
				}
				c.AdultAge = n
				return nil
			}},
		{Flag: "smtp-addr", Env: "CAREFRONT_SMTP_ADDR", Default: "",
			Usage: "mail server host:port (STARTTLS, or TLS on 465) for sign-in codes and security notices; empty keeps mail in a development outbox",
			parse: func(c *Config, v string) error {
				c.SMTPAddr = v
				if v == "" {
					return nil
				}
				return checkHostPort(v, false)
			}},
		{Flag: "smtp-from", Env: "CAREFRONT_SMTP_FROM", Default: "",
			Usage: "sender address of carefront's mail, e.g. portal@clinic.example",
			parse: func(c *Config, v string) error { c.SMTPFrom = v; return nil }},
		{Flag: "smtp-username", Env: "CAREFRONT_SMTP_USERNAME", Default: "",
			Usage: "mail server user name, if it asks for one",
			parse: func(c *Config, v string) error { c.SMTPUsername = v; return nil }},
		{Flag: "smtp-password", Env: "CAREFRONT_SMTP_PASSWORD", Default: "", Secret: true,
			Usage: "mail server password",
			parse: func(c *Config, v string) error { c.SMTPPassword = v; return nil }},
		{Flag: "fhir-upstream", Env: "CAREFRONT_FHIR_UPSTREAM", Default: "",
			Usage: "FHIR R4 base URL of the health system's EHR to read clinical data from; empty uses the embedded store",
			parse: func(c *Config, v string) error { c.FHIRUpstream = v; return checkUpstreamURL(v) }},
		{Flag: "fhir-upstream-token", Env: "CAREFRONT_FHIR_UPSTREAM_TOKEN", Default: "", Secret: true,
			Usage: "static bearer token for the upstream EHR (when it does not use SMART Backend Services)",
			parse: func(c *Config, v string) error { c.FHIRUpstreamToken = v; return nil }},
		{Flag: "fhir-upstream-client-id", Env: "CAREFRONT_FHIR_UPSTREAM_CLIENT_ID", Default: "",
			Usage: "SMART Backend Services client id carefront is registered under at the EHR",
			parse: func(c *Config, v string) error { c.FHIRUpstreamClientID = v; return nil }},
		{Flag: "fhir-upstream-key", Env: "CAREFRONT_FHIR_UPSTREAM_KEY", Default: "", Secret: true,
			Usage: "PEM private key (EC P-384 for ES384, or RSA for RS384) that signs the SMART Backend Services client assertion",
			parse: func(c *Config, v string) error { c.FHIRUpstreamKey = v; return checkPEM(v) }},
		{Flag: "fhir-upstream-key-id", Env: "CAREFRONT_FHIR_UPSTREAM_KEY_ID", Default: "",
			Usage: "kid of that key in the JWKS registered at the EHR",
			parse: func(c *Config, v string) error { c.FHIRUpstreamKeyID = v; return nil }},
		{Flag: "fhir-upstream-token-url", Env: "CAREFRONT_FHIR_UPSTREAM_TOKEN_URL", Default: "",
			Usage: "the EHR's token endpoint; empty reads it from .well-known/smart-configuration",
			parse: func(c *Config, v string) error { c.FHIRUpstreamTokenURL = v; return checkUpstreamURL(v) }},
		{Flag: "fhir-upstream-scope", Env: "CAREFRONT_FHIR_UPSTREAM_SCOPE", Default: "system/*.rs",
			Usage: "scope carefront asks the EHR for",
			parse: func(c *Config, v string) error { c.FHIRUpstreamScope = v; return nil }},
	}
}

func checkUpstreamURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an http(s) URL like https://ehr.example.org/fhir/R4")
	}
	return nil
}

func checkPEM(v string) error {
	if v == "" {
		return nil
	}
	if block, _ := pem.Decode([]byte(v)); block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
		return errors.New("must be a PEM private key (-----BEGIN PRIVATE KEY-----); give a file with CAREFRONT_FHIR_UPSTREAM_KEY_FILE")
	}
	return nil
}

// Error names a bad setting and how to fix it. Its text is one line, safe to
// print: it never holds a secret's value.
type Error struct {
	Setting string // e.g. "CAREFRONT_ADDR (--addr)"
	Problem string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Setting, e.Problem) }

// ExitCode makes a configuration error end the process with status 2.
func (e *Error) ExitCode() int { return 2 }

// Loader binds the settings to a FlagSet and later resolves them.
type Loader struct {
	fs       *flag.FlagSet
	settings []Setting
	values   map[string]*value
}

// value is a flag.Value holding the raw text; bool settings accept a bare
// --flag like the standard library's bool flags.
type value struct {
	s      string
	isBool bool
}

func (v *value) String() string { return v.s }
func (v *value) Set(s string) error {
	v.s = s
	return nil
}
func (v *value) IsBoolFlag() bool { return v.isBool }

// Register adds every setting as a flag of fs. Call Load after fs.Parse.
func Register(fs *flag.FlagSet) *Loader {
	l := &Loader{fs: fs, settings: Settings(), values: map[string]*value{}}
	for _, s := range l.settings {
		usage := s.Usage + " [" + s.Env
		if s.Secret {
			usage += ", or " + s.Env + "_FILE"
		}
		usage += "]"
		v := &value{s: s.Default, isBool: s.Default == "true" || s.Default == "false"}
		l.values[s.Flag] = v
		fs.Var(v, s.Flag, usage)
	}
	return l
}

// Load resolves every setting, flag first, then environment, then
// environment _FILE for secrets, then the default, and validates the result.
// CAREFRONT_METRICS_ADDR=off disables metrics, since an empty variable
// cannot be told from an unset one.
func (l *Loader) Load(getenv func(string) string) (Config, error) {
	set := map[string]bool{}
	l.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var c Config
	for _, s := range l.settings {
		name := fmt.Sprintf("%s (--%s)", s.Env, s.Flag)
		env, file := getenv(s.Env), ""
		if s.Secret {
			file = getenv(s.Env + "_FILE")
		}
		var v string
		switch {
		case set[s.Flag]:
			v = l.values[s.Flag].s
		case env != "" && file != "":
			return Config{}, &Error{Setting: name, Problem: "both " + s.Env + " and " + s.Env + "_FILE are set; keep one"}
		case env != "":
			v = env
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return Config{}, &Error{Setting: s.Env + "_FILE", Problem: "cannot read the file: " + errText(err)}
			}
			v = strings.TrimRight(string(b), "\r\n")
		default:
			v = s.Default
		}
		if err := s.parse(&c, v); err != nil {
			shown := fmt.Sprintf(" %q", v)
			if s.Secret {
				shown = ""
			}
			return Config{}, &Error{Setting: name + shown, Problem: err.Error()}
		}
	}
	return c, c.Validate()
}

// Validate checks the settings against each other.
func (c Config) Validate() error {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return &Error{Setting: "CAREFRONT_TLS_CERT_FILE (--tls-cert)", Problem: "set both --tls-cert and --tls-key, or neither"}
	}
	if c.TeenAge >= c.AdultAge && c.AdultAge > 0 {
		return &Error{Setting: "CAREFRONT_TEEN_AGE (--teen-age)", Problem: fmt.Sprintf("%d must be below the adult age (%d)", c.TeenAge, c.AdultAge)}
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
		return &Error{Setting: "CAREFRONT_METRICS_ADDR (--metrics-addr)", Problem: "must differ from --addr; metrics are served on their own listener"}
	}
	if (c.FHIRUpstreamClientID == "") != (c.FHIRUpstreamKey == "") {
		return &Error{Setting: "CAREFRONT_FHIR_UPSTREAM_CLIENT_ID (--fhir-upstream-client-id)", Problem: "SMART Backend Services needs both the client id and CAREFRONT_FHIR_UPSTREAM_KEY"}
	}
	if c.FHIRUpstreamKey != "" && c.FHIRUpstreamToken != "" {
		return &Error{Setting: "CAREFRONT_FHIR_UPSTREAM_TOKEN (--fhir-upstream-token)", Problem: "give either a static token or a Backend Services key, not both"}
	}
	if c.SMTPAddr != "" && !strings.Contains(c.SMTPFrom, "@") {
		return &Error{Setting: "CAREFRONT_SMTP_FROM (--smtp-from)", Problem: "give the sender address of carefront's mail, like portal@clinic.example"}
	}
	if c.FHIRUpstream != "" && c.Demo {
		return &Error{Setting: "CAREFRONT_DEMO (--demo)", Problem: "demo data lives in the embedded store; remove --demo or --fhir-upstream"}
	}
	if c.FHIRUpstream == "" && (c.FHIRUpstreamKey != "" || c.FHIRUpstreamToken != "") {
		return &Error{Setting: "CAREFRONT_FHIR_UPSTREAM (--fhir-upstream)", Problem: "upstream credentials are set but no upstream URL; set CAREFRONT_FHIR_UPSTREAM"}
	}
	if c.Production() {
		if c.FHIRUpstream != "" && !strings.HasPrefix(c.FHIRUpstream, "https://") {
			return &Error{Setting: "CAREFRONT_FHIR_UPSTREAM (--fhir-upstream)", Problem: "production reads the EHR over https:// only"}
		}
		if !c.DurableCommits {
			return &Error{Setting: "CAREFRONT_DURABLE_COMMITS (--durable-commits)", Problem: "production needs durable commits; remove the setting"}
		}
		if c.Demo {
			return &Error{Setting: "CAREFRONT_DEMO (--demo)", Problem: "demo data is refused when CAREFRONT_ENV=production; remove --demo"}
		}
		if !strings.HasPrefix(c.BaseURL, "https://") {
			return &Error{Setting: "CAREFRONT_BASE_URL (--base-url)", Problem: "production needs the public https:// URL of the portal"}
		}
		if c.SMTPAddr == "" {
			return &Error{Setting: "CAREFRONT_SMTP_ADDR (--smtp-addr)", Problem: "production sends sign-in codes and security notices by email; give the mail server"}
		}
	}
	return nil
}

func checkHostPort(v string, emptyOK bool) error {
	if v == "" {
		if emptyOK {
			return nil
		}
		return errors.New("must not be empty; use host:port like 127.0.0.1:8080")
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be host:port like 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	if strings.ContainsAny(host, "/ ") {
		return errors.New("host must be a name or an IP address")
	}
	return nil
}

func checkDatabaseURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" && u.Query().Get("host") == "" {
		return errors.New("must be a PostgreSQL URL like postgres://user@host:5432/carefront, or empty for SQLite")
	}
	return nil
}

func checkBaseURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an absolute http(s) URL without query, like https://portal.example.org")
	}
	return nil
}

func checkReadable(v string) error {
	if v == "" {
		return nil
	}
	f, err := os.Open(v)
	if err != nil {
		return errors.New("cannot read the file: " + errText(err))
	}
	return f.Close()
}

func checkSigningKey(v string) error {
	if v == "" {
		return nil
	}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return errors.New("must be one or more base64-encoded 32-byte Ed25519 seeds, oldest first")
	}
	for _, f := range fields {
		b, err := base64.StdEncoding.DecodeString(f)
		if err != nil || len(b) != 32 {
			return errors.New("must be one or more base64-encoded 32-byte Ed25519 seeds, oldest first")
		}
	}
	return nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("must be true or false")
	}
	return b, nil
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	s := strings.TrimSpace(v)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n*mult < 1024 || n*mult > 1<<30 {
		return 0, errors.New("must be a size from 1KiB to 1GiB, like 1MiB or 1048576")
	}
	return n * mult, nil
}

// errText is err's text without the path, which the setting already names.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
