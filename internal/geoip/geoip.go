// Package geoip names the approximate place of a network address from a
// MaxMind-format database (GeoLite2 or GeoIP2 City or Country, or DB-IP's
// lite databases, which use the same format), for the account security
// page's list of sessions. A place is shown to the account's owner only;
// it is never logged, audited or sent anywhere.
package geoip

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is an open database. It is safe for concurrent use.
type DB struct {
	r *maxminddb.Reader
}

// record is the part of a City or Country record carefront reads.
type record struct {
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Country struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
}

// Open opens a database file and checks that it names places (a City or
// Country database, not an ASN or other one).
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the GeoIP database %s: %w", path, err)
	}
	t := strings.ToLower(r.Metadata.DatabaseType)
	if !strings.Contains(t, "city") && !strings.Contains(t, "country") {
		r.Close()
		return nil, fmt.Errorf("%s is a %q database; carefront needs a City or Country database (e.g. GeoLite2-City.mmdb)", path, r.Metadata.DatabaseType)
	}
	return &DB{r: r}, nil
}

// Close releases the file.
func (d *DB) Close() error { return d.r.Close() }

// Place names where addr roughly is, like "Austin, Texas, United States",
// in lang when the database has that language and in English otherwise.
// Private, loopback and unknown addresses have no place ("").
func (d *DB) Place(addr, lang string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
		return ""
	}
	var rec record
	if err := d.r.Lookup(ip.Unmap()).Decode(&rec); err != nil {
		return ""
	}
	name := func(names map[string]string) string {
		if n := names[lang]; n != "" {
			return n
		}
		return names["en"]
	}
	var parts []string
	if n := name(rec.City.Names); n != "" {
		parts = append(parts, n)
	}
	if len(rec.Subdivisions) > 0 {
		if n := name(rec.Subdivisions[0].Names); n != "" {
			parts = append(parts, n)
		}
	}
	if n := name(rec.Country.Names); n != "" {
		parts = append(parts, n)
	}
	return strings.Join(parts, ", ")
}
