package fhir

//go:generate sh -c "cd ../../scripts/fhirtypes && npm ci --no-audit --no-fund && node gen.mjs"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"carefront/internal/apperr"
)

// ValidatePrimitives checks every primitive value of the resource raw (of
// type typ) against its FHIR R4 type: dates are real calendar dates in the
// FHIR forms, codes and ids match their patterns, booleans and numbers are
// JSON booleans and numbers in range, strings are non-empty JSON strings.
// It walks contained resources by their own resourceType, extensions and
// modifierExtensions as Extension, and primitive extensions (`_birthDate`)
// as Element.
//
// It checks types only: unknown elements, cardinality and required elements
// are left alone, and so is a resource of a type the tables lack. raw should
// be valid JSON (Parse leaves it so); it is scanned in place, not decoded.
//
// The error is apperr.Invalid naming the element's path and the type it
// should have, as in "Patient.contact[0].name.given[1] must be a FHIR
// string: a non-empty JSON string". It never quotes the value, which may
// be PHI.
//
// The tables come from the R4 StructureDefinitions by
// scripts/fhirtypes/gen.mjs (primitives_gen.go).
func ValidatePrimitives(typ string, raw json.RawMessage) error {
	t := typeDefs()[typ]
	if t == nil {
		return nil
	}
	b := raw
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return apperr.New(apperr.Invalid, "the %s must be a JSON object", typ)
	}
	end, pe := checkObject(t, b, i)
	if pe == nil && skipSpace(b, end) != len(b) {
		pe = malformed()
	}
	if pe != nil {
		return apperr.New(apperr.Invalid, "%s", pe.message(typ))
	}
	return nil
}

// kind is how a value of one FHIR type is checked.
type kind uint8

const (
	kindComplex  kind = iota // a datatype or backbone element: its elements are checked
	kindResource             // any resource, checked by its resourceType
	kindString               // string, markdown, xhtml
	kindBoolean
	kindInteger
	kindPositiveInt
	kindUnsignedInt
	kindDecimal
	kindDate
	kindDateTime
	kindInstant
	kindTime
	kindID
	kindCode
	kindURI // uri, url, canonical
	kindOID
	kindUUID
	kindBase64
)

// primitiveKinds maps each FHIR R4 primitive type to its check.
var primitiveKinds = map[string]kind{
	"string": kindString, "markdown": kindString, "xhtml": kindString,
	"boolean": kindBoolean, "integer": kindInteger, "positiveInt": kindPositiveInt,
	"unsignedInt": kindUnsignedInt, "decimal": kindDecimal, "date": kindDate,
	"dateTime": kindDateTime, "instant": kindInstant, "time": kindTime, "id": kindID,
	"code": kindCode, "uri": kindURI, "url": kindURI, "canonical": kindURI,
	"oid": kindOID, "uuid": kindUUID, "base64Binary": kindBase64,
}

// expected says, after "must be a FHIR <type>", what a valid value looks like.
var expected = [...]string{
	kindString:      "a non-empty JSON string",
	kindBoolean:     "JSON true or false",
	kindInteger:     "a JSON whole number from -2147483648 to 2147483647",
	kindPositiveInt: "a JSON whole number from 1 to 2147483647",
	kindUnsignedInt: "a JSON whole number from 0 to 2147483647",
	kindDecimal:     "a JSON number",
	kindDate:        "YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date",
	kindDateTime:    "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with Z or a +hh:mm offset, a real calendar date",
	kindInstant:     "YYYY-MM-DDThh:mm:ss[.fff] with Z or a +hh:mm offset, a real calendar date",
	kindTime:        "hh:mm:ss[.fff]",
	kindID:          "1 to 64 letters, digits, '-' or '.'",
	kindCode:        "a JSON string without leading, trailing or repeated whitespace",
	kindURI:         "a non-empty JSON string without whitespace",
	kindOID:         "urn:oid: and dot-separated numbers",
	kindUUID:        "urn:uuid: and a lower-case UUID",
	kindBase64:      "a JSON string of base64 characters",
}

// typeDef is one datatype, resource type or backbone element.
type typeDef struct {
	name  string
	elems map[string]elemDef // by JSON name, choice elements expanded (valueDateTime)
}

// elemDef is the type of one element.
type elemDef struct {
	kind  kind
	typ   *typeDef // for kindComplex
	fhirT string   // the FHIR type's name, for messages
}

func (e elemDef) primitive() bool { return e.kind >= kindString }

// typeDefs parses typeTable (primitives_gen.go) on first use.
var typeDefs = sync.OnceValue(func() map[string]*typeDef {
	defs, err := parseTypeTable(typeTable)
	if err != nil {
		panic("fhir: primitives_gen.go: " + err.Error())
	}
	return defs
})

// parseTypeTable reads the lines "Name Base elem:type ..." of gen.mjs.
func parseTypeTable(table string) (map[string]*typeDef, error) {
	lines := strings.Split(strings.TrimSpace(table), "\n")
	defs := make(map[string]*typeDef, len(lines))
	for _, l := range lines {
		name, _, _ := strings.Cut(l, " ")
		defs[name] = &typeDef{name: name}
	}
	resolve := func(t string) (elemDef, error) {
		if k, ok := primitiveKinds[t]; ok {
			return elemDef{kind: k, fhirT: t}, nil
		}
		if t == "Resource" {
			return elemDef{kind: kindResource, fhirT: t}, nil
		}
		if d := defs[t]; d != nil {
			return elemDef{kind: kindComplex, typ: d, fhirT: t}, nil
		}
		return elemDef{}, fmt.Errorf("unknown type %q", t)
	}
	baseNames := map[string]string{"E": "Element", "B": "BackboneElement", "R": "Resource", "D": "DomainResource"}
	// The base types first, so that the others can copy their elements.
	var bases, rest [][]string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			return nil, fmt.Errorf("bad line %q", l)
		}
		if f[1] == "-" {
			bases = append(bases, f)
		} else {
			rest = append(rest, f)
		}
	}
	for _, f := range append(bases, rest...) {
		d := defs[f[0]]
		d.elems = make(map[string]elemDef, len(f))
		if f[1] != "-" {
			b := defs[baseNames[f[1]]]
			if b == nil || b.elems == nil {
				return nil, fmt.Errorf("%s: bad base %q", f[0], f[1])
			}
			for k, v := range b.elems {
				d.elems[k] = v
			}
		}
		for _, el := range f[2:] {
			name, spec, ok := strings.Cut(el, ":")
			if !ok {
				return nil, fmt.Errorf("%s: bad element %q", f[0], el)
			}
			prefix, choice := strings.CutSuffix(name, "[x]")
			for _, t := range strings.Split(spec, ",") {
				e, err := resolve(t)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %v", f[0], name, err)
				}
				key := name
				if choice {
					key = prefix + strings.ToUpper(t[:1]) + t[1:]
				}
				d.elems[key] = e
			}
		}
	}
	return defs, nil
}

// pathError is a bad value found by the walk: the path to it is collected
// on the way back up, innermost segment first.
type pathError struct {
	rev  []string
	elem elemDef // what the value should have been
	bad  string  // or why the JSON could not be read
}

func (e *pathError) at(seg string) *pathError {
	e.rev = append(e.rev, seg)
	return e
}

func (e *pathError) index(i int) *pathError {
	return e.at("[" + strconv.Itoa(i) + "]")
}

func (e *pathError) message(typ string) string {
	var b strings.Builder
	b.WriteString(typ)
	for i := len(e.rev) - 1; i >= 0; i-- {
		if e.rev[i][0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(e.rev[i])
	}
	switch {
	case e.bad != "":
		b.WriteString(" ")
		b.WriteString(e.bad)
	case e.elem.kind == kindComplex && strings.Contains(e.elem.fhirT, "."): // a backbone element
		b.WriteString(" must be a JSON object")
	case e.elem.kind == kindComplex:
		b.WriteString(" must be a JSON object (a FHIR " + e.elem.fhirT + ")")
	case e.elem.kind == kindResource:
		b.WriteString(" must be a JSON object (a FHIR resource)")
	default:
		b.WriteString(" must be a FHIR " + e.elem.fhirT + ": " + expected[e.elem.kind])
	}
	return b.String()
}

func malformed() *pathError { return &pathError{bad: "is not valid JSON"} }

// elementDef is the type of `_x`, a primitive's id and extensions.
func elementDef() elemDef {
	return elemDef{kind: kindComplex, typ: typeDefs()["Element"], fhirT: "Element"}
}

// The walk reads the JSON in one pass: each function takes the whole
// document b and the index i where its value starts, and returns the index
// just past that value.

// checkObject checks the members of the JSON object at b[i] as elements of t.
func checkObject(t *typeDef, b []byte, i int) (int, *pathError) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, malformed()
		}
		kend := stringEnd(b, i)
		if kend < 0 {
			return 0, malformed()
		}
		key := b[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if json.Unmarshal(b[i:kend], &k) != nil {
				return 0, malformed()
			}
			key = []byte(k)
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return 0, malformed()
		}
		i = skipSpace(b, i+1)
		var pe *pathError
		if e, found := t.elems[string(key)]; found {
			if i, pe = checkValue(e, b, i, e.primitive()); pe != nil {
				return 0, pe.at(string(key))
			}
		} else if e, found := t.elems[string(trimUnderscore(key))]; found && e.primitive() {
			// A primitive's id and extensions: an Element, or an array of
			// them (null where the value has none) beside an array value.
			if i, pe = checkValue(elementDef(), b, i, true); pe != nil {
				return 0, pe.at(string(key[1:]))
			}
		} else if i = skipValue(b, i); i < 0 {
			// Other members are not this check's business.
			return 0, malformed()
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, malformed()
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, malformed()
		}
	}
}

// trimUnderscore returns the element name of a `_x` key, or nil.
func trimUnderscore(key []byte) []byte {
	if len(key) > 1 && key[0] == '_' {
		return key[1:]
	}
	return nil
}

// checkValue checks one element's value at b[i], or each of an array of
// them; nullOK admits nulls in an array (primitives and their `_x`).
func checkValue(e elemDef, b []byte, i int, nullOK bool) (int, *pathError) {
	if i >= len(b) {
		return 0, malformed()
	}
	if b[i] != '[' {
		return checkOne(e, b, i)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for n := 0; ; n++ {
		var pe *pathError
		switch {
		case i >= len(b):
			return 0, malformed()
		case nullOK && bytes.HasPrefix(b[i:], []byte("null")):
			i += 4
		case b[i] == '[':
			return 0, (&pathError{elem: e}).index(n)
		default:
			if i, pe = checkOne(e, b, i); pe != nil {
				return 0, pe.index(n)
			}
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, malformed()
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, malformed()
		}
	}
}

// checkOne checks the single value at b[i].
func checkOne(e elemDef, b []byte, i int) (int, *pathError) {
	switch e.kind {
	case kindComplex:
		if b[i] != '{' {
			return 0, &pathError{elem: e}
		}
		return checkObject(e.typ, b, i)
	case kindResource:
		if b[i] != '{' {
			return 0, &pathError{elem: e}
		}
		end := skipValue(b, i)
		if end < 0 {
			return 0, malformed()
		}
		t := typeDefs()[resourceTypeOf(b[i:end])]
		if t == nil {
			return end, nil // not a type the tables know
		}
		return checkObject(t, b, i)
	}
	end := skipValue(b, i)
	if end < 0 {
		return 0, malformed()
	}
	if !validPrimitive(e.kind, b[i:end]) {
		return 0, &pathError{elem: e}
	}
	return end, nil
}

// resourceTypeOf returns the resourceType of the JSON object b, or "".
func resourceTypeOf(b []byte) string {
	i := skipSpace(b, 1)
	for i < len(b) && b[i] == '"' {
		kend := stringEnd(b, i)
		if kend < 0 {
			return ""
		}
		key := b[i+1 : kend-1]
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return ""
		}
		i = skipSpace(b, i+1)
		end := skipValue(b, i)
		if end < 0 {
			return ""
		}
		if string(key) == "resourceType" {
			s, _ := jsonString(b[i:end])
			return string(s)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ',' {
			return ""
		}
		i = skipSpace(b, i+1)
	}
	return ""
}

// stringEnd returns the index just past the JSON string at b[i], or -1. It
// jumps from quote to quote, which is several times faster on long strings
// (narratives, attachments) than looking at every byte.
func stringEnd(b []byte, i int) int {
	j := i + 1
	for j <= len(b) {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		escapes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return -1
}

// skipValue returns the index just past the JSON value at b[i], or -1.
// Like the rest of the walk it trusts that b is valid JSON and only guards
// against running off its end.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && !isSpace(b[j]) {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// validPrimitive reports whether the JSON value v is a valid value of kind k.
func validPrimitive(k kind, v []byte) bool {
	switch k {
	case kindBoolean:
		return string(v) == "true" || string(v) == "false"
	case kindInteger:
		n, ok := jsonInt(v)
		return ok && n >= -1<<31 && n < 1<<31
	case kindPositiveInt:
		n, ok := jsonInt(v)
		return ok && v[0] != '-' && n >= 1 && n < 1<<31
	case kindUnsignedInt:
		n, ok := jsonInt(v) // R4's pattern has no sign: not even -0
		return ok && v[0] != '-' && n < 1<<31
	case kindDecimal:
		return validDecimal(v)
	case kindString:
		// Any non-empty JSON string: no need to unescape a narrative.
		return len(v) > 2 && v[0] == '"' && v[len(v)-1] == '"'
	}
	s, ok := jsonString(v)
	if !ok || len(s) == 0 {
		return false
	}
	switch k {
	case kindDate:
		n, parts := datePrefix(s)
		return parts > 0 && n == len(s)
	case kindDateTime:
		n, parts := datePrefix(s)
		return parts > 0 && n == len(s) || parts == 3 && validTimeAndZone(s[n:])
	case kindInstant:
		n, parts := datePrefix(s)
		return parts == 3 && validTimeAndZone(s[n:])
	case kindTime:
		return timePrefix(s) == len(s)
	case kindID:
		return validIDBytes(s)
	case kindCode:
		return validCode(s)
	case kindURI:
		for _, c := range s {
			if isSpace(c) {
				return false
			}
		}
		return true
	case kindOID:
		return validOID(s)
	case kindUUID:
		return validUUID(s)
	case kindBase64:
		return validBase64(s)
	}
	return false
}

// jsonString returns the contents of the JSON string v, unescaped.
func jsonString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, true
	}
	var u string
	if json.Unmarshal(v, &u) != nil {
		return nil, false
	}
	return []byte(u), true
}

// jsonInt reads a JSON number that FHIR's integer pattern admits,
// -?([0]|([1-9][0-9]*)), as long as it fits 64 bits comfortably.
func jsonInt(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 12 || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// validDecimal reports whether v matches FHIR's decimal pattern, which is
// JSON's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validDecimal(v []byte) bool {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	switch {
	case i < len(v) && v[i] == '0':
		i++
	case i < len(v) && v[i] >= '1' && v[i] <= '9':
		i = skipDigits(v, i)
	default:
		return false
	}
	if i < len(v) && v[i] == '.' {
		j := skipDigits(v, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		j := skipDigits(v, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(v)
}

func skipDigits(s []byte, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// digits reads the n-digit number at s[i:], or -1.
func digits(s []byte, i, n int) int {
	if i+n > len(s) {
		return -1
	}
	v := 0
	for _, c := range s[i : i+n] {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}

// datePrefix reads YYYY, YYYY-MM or YYYY-MM-DD at the start of s (a real
// calendar date of years 0001 to 9999) and reports how many bytes it took
// and how many of the three parts it found; parts is 0 if there is none.
func datePrefix(s []byte) (n, parts int) {
	y := digits(s, 0, 4)
	if y < 1 {
		return 0, 0
	}
	if len(s) == 4 || s[4] != '-' {
		return 4, 1
	}
	m := digits(s, 5, 2)
	if m < 1 || m > 12 {
		return 0, 0
	}
	if len(s) == 7 || s[7] != '-' {
		return 7, 2
	}
	d := digits(s, 8, 2)
	if d < 1 || d > daysIn(m, y) {
		return 0, 0
	}
	return 10, 3
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// timePrefix reads hh:mm:ss[.fraction] at the start of s and returns how
// many bytes it took, or -1. Seconds may be 60 (a leap second).
func timePrefix(s []byte) int {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return -1
	}
	h, m, sec := digits(s, 0, 2), digits(s, 3, 2), digits(s, 6, 2)
	if h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60 {
		return -1
	}
	if len(s) > 8 && s[8] == '.' {
		if j := skipDigits(s, 9); j > 9 {
			return j
		}
		return -1
	}
	return 8
}

// validTimeAndZone reports whether s is "T", a time and a zone: Z, or an
// offset from -14:00 to +14:00.
func validTimeAndZone(s []byte) bool {
	if len(s) < 1 || s[0] != 'T' {
		return false
	}
	n := timePrefix(s[1:])
	if n < 0 {
		return false
	}
	z := s[1+n:]
	if len(z) == 1 && z[0] == 'Z' {
		return true
	}
	if len(z) != 6 || z[0] != '+' && z[0] != '-' || z[3] != ':' {
		return false
	}
	h, m := digits(z, 1, 2), digits(z, 4, 2)
	return h >= 0 && m >= 0 && (h < 14 && m <= 59 || h == 14 && m == 0)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func validIDBytes(s []byte) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validCode reports whether s has no whitespace but single spaces between
// other characters, as R4 defines code.
func validCode(s []byte) bool {
	for i, c := range s {
		if isSpace(c) && (c != ' ' || i == 0 || i == len(s)-1 || isSpace(s[i+1])) {
			return false
		}
	}
	return true
}

// validOID matches urn:oid:[0-2](\.(0|[1-9][0-9]*))+
func validOID(s []byte) bool {
	rest, ok := bytes.CutPrefix(s, []byte("urn:oid:"))
	if !ok || len(rest) < 3 || rest[0] < '0' || rest[0] > '2' {
		return false
	}
	i := 1
	for i < len(rest) {
		if rest[i] != '.' || i+1 >= len(rest) {
			return false
		}
		j := skipDigits(rest, i+1)
		if j == i+1 || rest[i+1] == '0' && j > i+2 {
			return false
		}
		i = j
	}
	return true
}

// validUUID matches urn:uuid: and 8-4-4-4-12 lower-case hex digits.
func validUUID(s []byte) bool {
	rest, ok := bytes.CutPrefix(s, []byte("urn:uuid:"))
	if !ok || len(rest) != 36 {
		return false
	}
	for i, c := range rest {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// validBase64 matches R4's (\s*([0-9a-zA-Z\+/=]){4}\s*)+ : groups of four
// base64 characters, with whitespace only between groups.
func validBase64(s []byte) bool {
	n := 0
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=':
			n++
		case isSpace(c):
			if n%4 != 0 {
				return false
			}
		default:
			return false
		}
	}
	return n > 0 && n%4 == 0
}
