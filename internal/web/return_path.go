package web

import (
	"net/url"
	"strings"
)

// localPath is the one parser of every address a person is sent back to
// after a step (the "return" query parameter of forms and the JSON "return"
// of passkey sign-in). It admits only an absolute path on this site and
// answers "/" for anything else.
//
// Browsers repair what they are given before following it: they drop tabs
// and newlines anywhere in a URL, strip leading and trailing spaces and
// control characters, and read a backslash as a slash, so "/\t/evil.example"
// and "/\\evil.example" both lead to //evil.example, another site. The
// checks below are therefore on the bytes as given and on their decoded
// form, and refuse rather than repair.
func localPath(p string) string {
	if !safeLocalPath(p) {
		return "/"
	}
	return p
}

func safeLocalPath(p string) bool {
	if len(p) == 0 || len(p) > 2048 || p[0] != '/' {
		return false
	}
	if !plainPathBytes(p) {
		return false
	}
	// Decoded once and again, so that %2F%2F, %5C, %09 and their doubly
	// encoded forms are judged as what a lenient hop might turn them into.
	d := p
	for range 2 {
		u, err := url.PathUnescape(d)
		if err != nil {
			return false
		}
		if !plainDecoded(u) {
			return false
		}
		d = u
	}
	if strings.HasPrefix(d, "//") {
		return false
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	return true
}

// plainPathBytes reports whether s has only printable ASCII, no space, no
// backslash, and does not begin with two slashes.
func plainPathBytes(s string) bool {
	if strings.HasPrefix(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// plainDecoded is plainPathBytes for decoded text, which may hold UTF-8.
func plainDecoded(s string) bool {
	if strings.HasPrefix(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
