// Package geoiptest writes small MaxMind-format databases for tests, so
// the GeoIP code reads a real database file without shipping one.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Names is a map of names by language, as the databases hold them.
func Names(en, es string) mmdbtype.Map {
	m := mmdbtype.Map{"en": mmdbtype.String(en)}
	if es != "" {
		m["es"] = mmdbtype.String(es)
	}
	return m
}

// City is a City database record.
func City(city, region, country mmdbtype.Map) mmdbtype.Map {
	rec := mmdbtype.Map{"country": mmdbtype.Map{"names": country}}
	if city != nil {
		rec["city"] = mmdbtype.Map{"names": city}
	}
	if region != nil {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": region}}
	}
	return rec
}

// Write makes a database of dbType (e.g. "GeoLite2-City") holding records
// by network (CIDR) in a temporary file and returns its path.
func Write(t testing.TB, dbType string, records map[string]mmdbtype.Map) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, Languages: []string{"en", "es"}})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}
