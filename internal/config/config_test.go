package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carefront/internal/config"
)

func load(t *testing.T, args []string, env map[string]string) (config.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := config.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q) = %v", args, err)
	}
	return l.Load(func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.MetricsAddr != "127.0.0.1:9090" || c.DataDir != "./carefront-data" ||
		c.DatabaseURL != "" || c.Env != "development" || c.Demo || !c.DurableCommits ||
		c.MaxBodyBytes != 1<<20 || c.ShutdownTimeout != 30*time.Second || c.AuditCheckpoint != 1000 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestPrecedenceFlagEnvFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "db-url")
	os.WriteFile(secret, []byte("postgres://app@db.internal/carefront\n"), 0o600)

	c, err := load(t, []string{"--addr", "0.0.0.0:9000", "--demo"}, map[string]string{
		"CAREFRONT_ADDR":              "127.0.0.1:1111",
		"CAREFRONT_METRICS_ADDR":      "off",
		"CAREFRONT_DATABASE_URL_FILE": secret,
		"CAREFRONT_MAX_BODY_BYTES":    "64KiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" {
		t.Errorf("Addr = %q, want the flag's value over the environment", c.Addr)
	}
	if c.MetricsAddr != "" {
		t.Errorf("MetricsAddr = %q, want disabled by off", c.MetricsAddr)
	}
	if c.DatabaseURL != "postgres://app@db.internal/carefront" {
		t.Errorf("DatabaseURL = %q, want the file's content without the newline", c.DatabaseURL)
	}
	if !c.Demo || c.MaxBodyBytes != 64<<10 {
		t.Errorf("Demo = %v, MaxBodyBytes = %d", c.Demo, c.MaxBodyBytes)
	}
	if c, err := load(t, []string{"--metrics-addr="}, nil); err != nil || c.MetricsAddr != "" {
		t.Errorf("--metrics-addr= gives %q, %v; want disabled", c.MetricsAddr, err)
	}
}

func TestBadSettingsNameSettingAndFix(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // in the one-line message
	}{
		{"addr without port", []string{"--addr", "localhost"}, nil, "CAREFRONT_ADDR (--addr) \"localhost\": must be host:port"},
		{"port out of range", nil, map[string]string{"CAREFRONT_ADDR": "127.0.0.1:99999"}, "port must be a number from 0 to 65535"},
		{"env typo", nil, map[string]string{"CAREFRONT_ENV": "prod"}, "CAREFRONT_ENV (--env) \"prod\": must be development or production"},
		{"mysql url", nil, map[string]string{"CAREFRONT_DATABASE_URL": "mysql://x"}, "must be a PostgreSQL URL"},
		{"body size", []string{"--max-body", "lots"}, nil, "must be a size from 1KiB to 1GiB"},
		{"tiny body", []string{"--max-body", "10"}, nil, "must be a size from 1KiB to 1GiB"},
		{"duration", []string{"--shutdown-timeout", "forever"}, nil, "must be a duration"},
		{"care look-back", []string{"--care-relationship-months", "0"}, nil, "CAREFRONT_CARE_RELATIONSHIP_MONTHS (--care-relationship-months) \"0\": must be a number of months from 1 to 120"},
		{"teen age", []string{"--teen-age", "twelve"}, nil, "CAREFRONT_TEEN_AGE (--teen-age) \"twelve\": must be an age in years from 1 to 20"},
		{"teen age not below adult age", []string{"--teen-age", "16", "--adult-age", "16"}, nil, "CAREFRONT_TEEN_AGE (--teen-age): 16 must be below the adult age (16)"},
		{"part2 source not a URI", []string{"--part2-sources", "sud clinic"}, nil, "is not a URI"},
		{"bool", []string{"--durable-commits=maybe"}, nil, "must be true or false"},
		{"log level", []string{"--log-level", "loud"}, nil, "must be debug, info, warn or error"},
		{"missing cert", []string{"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", filepath.Join(dir, "nope.key")}, nil, "cannot read the file: no such file or directory"},
		{"cert without key", []string{"--tls-cert", os.Args[0]}, nil, "set both --tls-cert and --tls-key"},
		{"same metrics addr", []string{"--metrics-addr", "127.0.0.1:8080"}, nil, "must differ from --addr"},
		{"signing key", nil, map[string]string{"CAREFRONT_AUDIT_SIGNING_KEY": "c2hvcnQ="}, "must be one or more base64-encoded 32-byte Ed25519 seeds"},
		{"secret twice", nil, map[string]string{"CAREFRONT_DATABASE_URL": "postgres://a@b/c", "CAREFRONT_DATABASE_URL_FILE": "/x"}, "keep one"},
		{"unreadable secret file", nil, map[string]string{"CAREFRONT_KEYSET_FILE": filepath.Join(dir, "missing")}, "CAREFRONT_KEYSET_FILE: cannot read the file"},
		{"demo in production", []string{"--demo", "--env", "production", "--base-url", "https://portal.example.org"}, nil, "demo data is refused when CAREFRONT_ENV=production"},
		{"production over http", []string{"--env", "production", "--base-url", "http://portal.example.org"}, nil, "production needs the public https:// URL"},
		{"production without durability", []string{"--env", "production", "--base-url", "https://p.example.org", "--durable-commits=false", "--smtp-addr", "m.example.org:587", "--smtp-from", "p@example.org"}, nil, "production needs durable commits"},
		{"base url with query", []string{"--base-url", "https://p.example.org/?x=1"}, nil, "absolute http(s) URL without query"},
		{"empty data dir", []string{"--data-dir", " "}, nil, "must not be empty"},
		{"smtp without sender", []string{"--smtp-addr", "mail.example.org:587"}, nil, "give the sender address"},
		{"smtp address", []string{"--smtp-addr", "mail.example.org"}, nil, "must be host:port"},
		{"production without mail", []string{"--env", "production", "--base-url", "https://p.example.org"}, nil, "production sends sign-in codes"},
		{"demo with upstream", []string{"--demo", "--fhir-upstream", "https://ehr.example.org/fhir"}, nil, "demo data lives in the embedded store"},
		{"upstream not http", []string{"--fhir-upstream", "ftp://ehr.example.org"}, nil, "must be an http(s) URL"},
		{"upstream key not PEM", []string{"--fhir-upstream", "https://ehr.example.org/fhir", "--fhir-upstream-client-id", "c"}, map[string]string{"CAREFRONT_FHIR_UPSTREAM_KEY": "secret-bytes"}, "must be a PEM private key"},
		{"upstream client id without key", []string{"--fhir-upstream", "https://ehr.example.org/fhir", "--fhir-upstream-client-id", "c"}, nil, "needs both the client id and CAREFRONT_FHIR_UPSTREAM_KEY"},
		{"upstream token and key", []string{"--fhir-upstream", "https://ehr.example.org/fhir", "--fhir-upstream-client-id", "c"}, map[string]string{"CAREFRONT_FHIR_UPSTREAM_TOKEN": "t", "CAREFRONT_FHIR_UPSTREAM_KEY": "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"}, "either a static token or a Backend Services key"},
		{"upstream credentials without URL", nil, map[string]string{"CAREFRONT_FHIR_UPSTREAM_TOKEN": "t"}, "no upstream URL"},
		{"upstream over http in production", []string{"--env", "production", "--base-url", "https://p.example.org", "--fhir-upstream", "http://ehr.example.org/fhir", "--smtp-addr", "m.example.org:587", "--smtp-from", "p@example.org"}, nil, "production reads the EHR over https:// only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, tt.env)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %v, want a *config.Error", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") || ce.ExitCode() != 2 {
				t.Errorf("Load error = %q, want one line containing %q, exit code 2", msg, tt.want)
			}
		})
	}
}

func TestSecretValuesNeverInErrors(t *testing.T) {
	const secret = "postgres-but-not-really:hunter2@host"
	_, err := load(t, nil, map[string]string{"CAREFRONT_DATABASE_URL": secret})
	if err == nil {
		t.Fatal("Load = nil error for a bad database URL")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the secret", err)
	}
}

func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		if !strings.Contains(string(readme), "`"+s.Env+"`") || !strings.Contains(string(readme), "`--"+s.Flag+"`") {
			t.Errorf("README.md does not document %s / --%s", s.Env, s.Flag)
		}
	}
}
