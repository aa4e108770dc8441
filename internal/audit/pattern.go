package audit

import "strings"

// charClass is the shape of most fields a record accepts (codes, ids,
// tokens): bytes from one set, a length within bounds, after one of the
// prefixes when there are any. Shaping a record checks a dozen fields, and
// regular expressions made that a sixth of an API read's audit cost; each
// class here matches exactly what its expression in pattern_test.go does.
type charClass struct {
	allowed  [256]bool
	min, max int
	prefixes []string
}

const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower  = "abcdefghijklmnopqrstuvwxyz"
	digits = "0123456789"
	hexLow = "0123456789abcdef"
)

func newClass(chars string, min, max int, prefixes ...string) *charClass {
	c := &charClass{min: min, max: max, prefixes: prefixes}
	for i := 0; i < len(chars); i++ {
		c.allowed[chars[i]] = true
	}
	return c
}

// MatchString reports whether s is of the class.
func (c *charClass) MatchString(s string) bool {
	if len(c.prefixes) > 0 {
		found := false
		for _, p := range c.prefixes {
			if rest, ok := strings.CutPrefix(s, p); ok {
				s, found = rest, true
				break
			}
		}
		if !found {
			return false
		}
	}
	if len(s) < c.min || len(s) > c.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !c.allowed[s[i]] {
			return false
		}
	}
	return true
}

// typeName is a FHIR resource type's shape: a capital, then 1 to 63
// letters.
type typeName struct{}

func (typeName) MatchString(s string) bool {
	return len(s) >= 2 && s[0] >= 'A' && s[0] <= 'Z' && letters.MatchString(s[1:])
}

// refShape is "Type/id".
type refShape struct{}

func (refShape) MatchString(s string) bool {
	typ, id, ok := strings.Cut(s, "/")
	return ok && typeName{}.MatchString(typ) && refID.MatchString(id)
}

var (
	letters = newClass(upper+lower, 1, 63)
	refID   = newClass(upper+lower+digits+"-.", 1, 64)

	refPattern    refShape
	queryType     typeName
	codePattern   = newClass(upper+lower+digits+"._:-", 1, 64)
	systemPattern = newClass(upper+lower+digits+"._:/-", 1, 200, "http:", "https:", "urn:")
	// displayPattern admits the fixed displays of standard codes only.
	displayPattern = newClass(upper+lower+" ", 0, 64)
	clientPattern  = newClass(upper+lower+digits+"._:-", 1, 128)
	tokenPattern   = newClass(hexLow, 16, 64)
	reqIDPattern   = newClass(upper+lower+digits+"._-", 1, 64)
	sessionPattern = newClass(hexLow, 64, 64)
)
