package locale

import (
	"testing"
)

func TestPick(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ choice, accept, want string }{
		{"", "", "en"},
		{"", "es-MX,es;q=0.9,en;q=0.5", "es"},
		{"", "fr-FR,fr;q=0.9", "en"},
		{"", "fr-FR,es;q=0.5", "es"},
		{"EN", "es", "en"}, // an explicit choice wins over the browser
		{"de", "es", "es"}, // an unsupported choice is ignored
		{"", "not a header;;;", "en"},
	} {
		if got := c.Pick(tc.choice, tc.accept).String(); got != tc.want {
			t.Errorf("Pick(%q, %q) = %s, want %s", tc.choice, tc.accept, got, tc.want)
		}
	}
}

func TestTranslatorTemplatesAndMissingIDs(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	es := c.Translator(c.Pick("es", ""))
	if got := es.T("signin.throttled", "Wait", 12); got != "Demasiados intentos. Espere 12 segundos e inténtelo de nuevo." {
		t.Errorf("template data: %q", got)
	}
	if got := es.T("no.such.id"); got != "no.such.id" {
		t.Errorf("missing id renders as %q, want the id", got)
	}
	// Both catalogues hold the same ids.
	en, sp := c.IDs(Supported[0]), c.IDs(Supported[1])
	if len(en) == 0 || len(en) != len(sp) {
		t.Fatalf("en has %d ids, es %d", len(en), len(sp))
	}
	for i := range en {
		if en[i] != sp[i] {
			t.Fatalf("catalogues differ at %s / %s", en[i], sp[i])
		}
	}
}
