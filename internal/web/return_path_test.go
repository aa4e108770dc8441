package web

import "testing"

func TestLocalPathRefusesEveryWayOffTheSite(t *testing.T) {
	hostile := []string{
		"", "account", "https://evil.example", "http:/evil.example", "javascript:alert(1)",
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "\t//evil.example", " /x", "/x y",
		"/\x00/evil.example", "/\x7f", "/\u00a0/evil.example", "/\u2028/evil.example",
		"/%2F/evil.example", "/%2f%2fevil.example", "%2F%2Fevil.example", "/%5Cevil.example", "/%5cevil.example",
		"/%09/evil.example", "/%0a/evil.example", "/%0D/evil.example", "/%20/evil.example", "/%00",
		"/%252F/evil.example", "/%255C/evil.example", "/%2509/evil.example",
		"/%zz", "/x\\y",
	}
	for _, p := range hostile {
		if got := localPath(p); got != "/" {
			t.Errorf("localPath(%q) = %q, want /", p, got)
		}
	}
	local := []string{
		"/", "/account/security", "/account/password?x=1&y=%C3%A9", "/results/http%3A%2F%2Floinc.org%7C4548-4",
		"/a/b/", "/signin/verify?return=%2Faccount%2Fpassword", "/x#section",
	}
	for _, p := range local {
		if got := localPath(p); got != p {
			t.Errorf("localPath(%q) = %q, want it unchanged", p, got)
		}
	}
}
