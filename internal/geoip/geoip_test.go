package geoip_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"carefront/internal/geoip"
	"carefront/internal/geoip/geoiptest"
)

func TestPlace(t *testing.T) {
	path := geoiptest.Write(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"198.51.100.0/24": geoiptest.City(geoiptest.Names("Austin", ""), geoiptest.Names("Texas", "Texas"), geoiptest.Names("United States", "Estados Unidos")),
		"2001:db8::/32":   geoiptest.City(nil, nil, geoiptest.Names("Mexico", "México")),
	})
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct{ addr, lang, want string }{
		{"198.51.100.7", "en", "Austin, Texas, United States"},
		{"198.51.100.7", "es", "Austin, Texas, Estados Unidos"}, // no Spanish city name: English
		{"::ffff:198.51.100.7", "en", "Austin, Texas, United States"},
		{"2001:db8::1", "es", "México"},
		{"203.0.113.9", "en", ""}, // not in the database
		{"10.1.2.3", "en", ""},    // private
		{"127.0.0.1", "en", ""},
		{"not an address", "en", ""},
	} {
		if got := db.Place(tc.addr, tc.lang); got != tc.want {
			t.Errorf("Place(%q, %s) = %q, want %q", tc.addr, tc.lang, got, tc.want)
		}
	}
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	asn := geoiptest.Write(t, "GeoLite2-ASN", map[string]mmdbtype.Map{"198.51.100.0/24": {"autonomous_system_number": mmdbtype.Uint32(64500)}})
	if _, err := geoip.Open(asn); err == nil || !strings.Contains(err.Error(), "City or Country") {
		t.Errorf("an ASN database: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.mmdb")
	os.WriteFile(junk, []byte("not a database"), 0o600)
	if _, err := geoip.Open(junk); err == nil {
		t.Error("a file that is not a database was accepted")
	}
	if _, err := geoip.Open(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("a missing file was accepted")
	}
}
