package fhir

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"carefront/internal/apperr"
)

// Resource is one FHIR resource: its original JSON and the few fields the
// code reads. Raw always holds the whole resource, meta included.
type Resource struct {
	Type        string
	ID          string
	VersionID   string
	LastUpdated time.Time
	Raw         json.RawMessage

	// tree is Raw decoded, kept by Tree for the next reader.
	tree map[string]any
}

// Tree returns Raw decoded (numbers kept exact), decoding it once: the
// access decision and the view that shows the resource read the same
// tree. It is not safe for concurrent use, and callers must not change
// the tree.
func (r *Resource) Tree() (map[string]any, error) {
	if r.tree != nil {
		return r.tree, nil
	}
	t, err := Decode(r.Raw)
	if err != nil {
		return nil, err
	}
	r.tree = t
	return t, nil
}

// Ref returns "Type/id".
func (r *Resource) Ref() string { return r.Type + "/" + r.ID }

// head is what Parse reads of every resource.
type head struct {
	ResourceType *string `json:"resourceType"`
	ID           *string `json:"id"`
	Meta         *struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
}

// Parse checks that b is one JSON object naming a FHIR R4 resourceType, with
// a valid id if it has one, and returns it compacted. The errors are
// apperr.Invalid with a message that names the problem, never the content.
func Parse(b []byte) (*Resource, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, apperr.New(apperr.Invalid, "the resource is not valid JSON (%s)", jsonProblem(err))
	}
	raw := buf.Bytes()
	if len(raw) == 0 || raw[0] != '{' {
		return nil, apperr.New(apperr.Invalid, "the resource must be a JSON object")
	}
	// Only the top level is read here (Compact has validated the rest):
	// decoding the whole resource again would double the cost of import.
	ms, err := members(raw)
	if err != nil {
		return nil, apperr.New(apperr.Invalid, "the resource must be a JSON object")
	}
	var h head
	for _, m := range ms {
		var err error
		switch m.key {
		case "resourceType":
			err = json.Unmarshal(m.val, &h.ResourceType)
		case "id":
			err = json.Unmarshal(m.val, &h.ID)
		case "meta":
			err = json.Unmarshal(m.val, &h.Meta)
		}
		if err != nil {
			return nil, apperr.New(apperr.Invalid, "the resource's %s has the wrong JSON type", m.key)
		}
	}
	if h.ResourceType == nil || *h.ResourceType == "" {
		return nil, apperr.New(apperr.Invalid, "the resource has no resourceType")
	}
	if !KnownType(*h.ResourceType) {
		return nil, apperr.New(apperr.Invalid, "resourceType %q is not a FHIR R4 resource type", clip(*h.ResourceType))
	}
	r := &Resource{Type: *h.ResourceType, Raw: raw}
	if h.ID != nil {
		if !ValidID(*h.ID) {
			return nil, apperr.New(apperr.Invalid, "the id of this %s is not a valid FHIR id (1 to 64 letters, digits, '-' or '.')", r.Type)
		}
		r.ID = *h.ID
	}
	if h.Meta != nil {
		r.VersionID = h.Meta.VersionID
		if h.Meta.LastUpdated != "" {
			r.LastUpdated, _ = time.Parse(time.RFC3339Nano, h.Meta.LastUpdated)
		}
	}
	return r, nil
}

// jsonProblem describes a JSON error by its kind and offset only.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end") {
		return "it ends too soon"
	}
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q should be %s", te.Field, te.Type)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too soon"
	}
	return "unreadable"
}

// clip keeps user-supplied names in messages short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// member is one name/value pair of a JSON object, in document order.
type member struct {
	key string
	val json.RawMessage
}

// members splits a JSON object into its members, keeping their order. It
// scans the bytes itself (raw must be valid JSON, as Parse leaves it),
// which is several times faster than a json.Decoder.
func members(raw json.RawMessage) ([]member, error) {
	b := bytes.TrimSpace(raw)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, errors.New("not a JSON object")
	}
	var out []member
	i := skipSpace(b, 1)
	for i < len(b)-1 {
		if b[i] != '"' {
			return nil, errors.New("malformed JSON object")
		}
		kend, err := endOfString(b, i)
		if err != nil {
			return nil, err
		}
		var key string
		if bytes.IndexByte(b[i+1:kend-1], '\\') < 0 {
			key = string(b[i+1 : kend-1])
		} else if err := json.Unmarshal(b[i:kend], &key); err != nil {
			return nil, err
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return nil, errors.New("malformed JSON object")
		}
		i = skipSpace(b, i+1)
		vend, err := endOfValue(b, i)
		if err != nil {
			return nil, err
		}
		out = append(out, member{key, json.RawMessage(b[i:vend])})
		i = skipSpace(b, vend)
		if i < len(b)-1 {
			if b[i] != ',' {
				return nil, errors.New("malformed JSON object")
			}
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just past the string starting at b[i].
func endOfString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated JSON string")
}

// endOfValue returns the index just past the JSON value starting at b[i].
func endOfValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing JSON value")
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := endOfString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated JSON value")
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		return j, nil
	}
}

func encodeMembers(ms []member) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// WithMeta returns r's JSON with id, meta.versionId and meta.lastUpdated
// set, every other member kept as it was and where it was. resourceType,
// id and meta come first, as FHIR's own JSON does.
func (r *Resource) WithMeta(id, version string, updated time.Time) (*Resource, error) {
	ms, err := members(r.Raw)
	if err != nil {
		return nil, err
	}
	var meta []member
	rest := ms[:0:0]
	for _, m := range ms {
		switch m.key {
		case "resourceType", "id":
		case "meta":
			if meta, err = members(m.val); err != nil {
				return nil, apperr.New(apperr.Invalid, "meta of this %s must be a JSON object", r.Type)
			}
		default:
			rest = append(rest, m)
		}
	}
	lu := updated.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	meta = setMember(meta, "versionId", version)
	meta = setMember(meta, "lastUpdated", lu)
	out := []member{{"resourceType", quote(r.Type)}, {"id", quote(id)}, {"meta", encodeMembers(meta)}}
	out = append(out, rest...)
	return &Resource{Type: r.Type, ID: id, VersionID: version, LastUpdated: updated.UTC().Truncate(time.Microsecond), Raw: encodeMembers(out)}, nil
}

func setMember(ms []member, key, val string) []member {
	// versionId and lastUpdated lead meta, in that order.
	kept := ms[:0:0]
	for _, m := range ms {
		if m.key != key {
			kept = append(kept, m)
		}
	}
	pos := 0
	if key == "lastUpdated" && len(kept) > 0 && kept[0].key == "versionId" {
		pos = 1
	}
	return append(kept[:pos:pos], append([]member{{key, quote(val)}}, kept[pos:]...)...)
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// ContentHash is a digest of what a decoded resource says, with id as its
// id, leaving out meta.versionId and meta.lastUpdated, and independent of
// member order and whitespace: two writes with the same hash change
// nothing. v is not modified.
func ContentHash(v map[string]any, id string) ([32]byte, error) {
	top := make(map[string]any, len(v)+1)
	for k, x := range v {
		top[k] = x
	}
	top["id"] = id
	if m, ok := v["meta"].(map[string]any); ok {
		meta := make(map[string]any, len(m))
		for k, x := range m {
			if k != "versionId" && k != "lastUpdated" {
				meta[k] = x
			}
		}
		if len(meta) == 0 {
			delete(top, "meta")
		} else {
			top["meta"] = meta
		}
	}
	b, err := json.Marshal(top) // maps marshal with sorted keys
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Decode unmarshals raw into a generic tree (numbers kept exact) for the
// index extractors.
func Decode(raw json.RawMessage) (map[string]any, error) {
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// RewriteReferences returns raw with every Reference.reference string passed
// through fn (which returns the new value, or the old one), keeping member
// order. It is how a transaction turns urn:uuid references into ids.
func RewriteReferences(raw json.RawMessage, fn func(string) (string, error)) (json.RawMessage, error) {
	if !bytes.Contains(raw, []byte(`"reference"`)) {
		return raw, nil
	}
	return rewrite(raw, fn)
}

func rewrite(raw json.RawMessage, fn func(string) (string, error)) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return raw, nil
	}
	switch trimmed[0] {
	case '{':
		if !bytes.Contains(trimmed, []byte(`"reference"`)) {
			return raw, nil
		}
		ms, err := members(trimmed)
		if err != nil {
			return nil, err
		}
		for i, m := range ms {
			if m.key == "reference" && len(m.val) > 0 && m.val[0] == '"' {
				var s string
				if err := json.Unmarshal(m.val, &s); err != nil {
					return nil, err
				}
				ns, err := fn(s)
				if err != nil {
					return nil, err
				}
				ms[i].val = quote(ns)
				continue
			}
			if ms[i].val, err = rewrite(m.val, fn); err != nil {
				return nil, err
			}
		}
		return encodeMembers(ms), nil
	case '[':
		if !bytes.Contains(trimmed, []byte(`"reference"`)) {
			return raw, nil
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, err
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range elems {
			ne, err := rewrite(e, fn)
			if err != nil {
				return nil, err
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(ne)
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	}
	return raw, nil
}

// SecurityLabels returns meta.security of a decoded resource as
// "system|code" strings, sorted.
func SecurityLabels(v map[string]any) []string {
	meta, _ := v["meta"].(map[string]any)
	var out []string
	for _, t := range tokens(meta["security"]) {
		out = append(out, t.System+"|"+t.Code)
	}
	sort.Strings(out)
	return out
}

// ParseRef splits a literal reference into type and id. It accepts
// "Type/id", "Type/id/_history/v" and absolute URLs ending in one of those;
// contained ("#x"), urn: and conditional references report ok=false.
func ParseRef(ref string) (typ, id string, ok bool) {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") || strings.Contains(ref, "?") {
		return "", "", false
	}
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 {
		return "", "", false
	}
	typ, id = parts[n-2], parts[n-1]
	if !KnownType(typ) || !ValidID(id) {
		return "", "", false
	}
	return typ, id, true
}
