package web

import (
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"carefront/internal/geoip"
	"carefront/internal/geoip/geoiptest"
	"carefront/internal/session"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// With a GeoIP database configured, the session list says roughly where
// each session is, in the reader's language.
func TestSessionListShowsApproximatePlace(t *testing.T) {
	path := geoiptest.Write(t, "GeoLite2-City", map[string]mmdbtype.Map{
		"198.51.100.0/24": geoiptest.City(geoiptest.Names("Austin", ""), geoiptest.Names("Texas", ""), geoiptest.Names("United States", "Estados Unidos")),
	})
	places, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer places.Close()
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db, func(o *Options) { o.Places = places })
		h.signIn(t, "ana@example.com")
		// Another device of Ana's, somewhere public.
		a := mustAccount(t, h, "ana@example.com")
		if _, _, err := session.NewManager(db).Create(t.Context(), a.ID, session.LevelMFA, 15*time.Minute, "Mozilla/5.0 (iPhone) Safari/604.1", "198.51.100.7"); err != nil {
			t.Fatal(err)
		}
		_, page := h.get(t, "/account/security")
		if !strings.Contains(page, "Austin, Texas, United States") || !strings.Contains(page, "Approximate place") {
			t.Errorf("no place on the security page")
		}
		_, page = h.get(t, "/account/security?lang=es")
		if !strings.Contains(page, "Austin, Texas, Estados Unidos") {
			t.Errorf("no place in Spanish")
		}
	})
}
