package audit

import (
	"regexp"
	"strings"
	"testing"
)

// expressions are the shapes the audit trail accepts, as regular
// expressions: the classes of pattern.go must match exactly these.
var expressions = []struct {
	name string
	re   *regexp.Regexp
	m    interface{ MatchString(string) bool }
}{
	{"reference", regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$`), refPattern},
	{"code", regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,64}$`), codePattern},
	{"system", regexp.MustCompile(`^(https?|urn):[A-Za-z0-9._:/\-]{1,200}$`), systemPattern},
	{"display", regexp.MustCompile(`^[A-Za-z ]{0,64}$`), displayPattern},
	{"client", regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,128}$`), clientPattern},
	{"token", regexp.MustCompile(`^[a-f0-9]{16,64}$`), tokenPattern},
	{"request id", regexp.MustCompile(`^[A-Za-z0-9._\-]{1,64}$`), reqIDPattern},
	{"session", regexp.MustCompile(`^[0-9a-f]{64}$`), sessionPattern},
	{"type", regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`), queryType},
}

var shapeSamples = []string{
	"", " ", "Patient/p1", "Patient/", "/p1", "P/p1", "Pa/p1", "patient/p1", "Patient/p1/x", "Patient/p 1",
	"Patient/p1\n", "Observation/03adc5ad-060f-4789-8858-0fe9a55e3ede", "Patient", "P", "Device/app.x",
	"read", "rest", "110112", "urn:oid:1.2.3", "http://hl7.org/fhir/restful-interaction", "https://x", "http:",
	"https:", "urn:", "httpx://a", "HTTP://a", "http://a b", "Jane Doe", "Read", "Read\t", "é", "caf\xc3\xa9",
	"\xff", "0123456789abcdef", "0123456789ABCDEF", "0123456789abcde", strings.Repeat("a", 64),
	strings.Repeat("a", 65), strings.Repeat("0", 64), strings.Repeat("A", 64), strings.Repeat("a", 128),
	strings.Repeat("a", 129), "Patient/" + strings.Repeat("x", 64), "Patient/" + strings.Repeat("x", 65),
	strings.Repeat("P", 64) + "/x", strings.Repeat("P", 65) + "/x", "req-1", "req_1.a", "a:b", "Patient?name=x",
}

func TestShapesMatchTheirExpressions(t *testing.T) {
	for _, e := range expressions {
		for _, s := range shapeSamples {
			if got, want := e.m.MatchString(s), e.re.MatchString(s); got != want {
				t.Errorf("%s %q: %v, the expression says %v", e.name, s, got, want)
			}
		}
	}
}

func FuzzShapesMatchTheirExpressions(f *testing.F) {
	for _, s := range shapeSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, e := range expressions {
			if got, want := e.m.MatchString(s), e.re.MatchString(s); got != want {
				t.Errorf("%s %q: %v, the expression says %v", e.name, s, got, want)
			}
		}
	})
}
