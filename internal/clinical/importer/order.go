package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A set of files is imported in an order that lets later files refer to
// earlier ones. A SMART Bulk Data export is one Type.000.ndjson file per
// resource type, and its resources refer to Practitioners, Locations and
// Organizations by conditional reference
// (Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974592), which
// the store resolves when it stores the referring resource. In name order
// Encounter.000.ndjson comes before Practitioner.000.ndjson and every
// Encounter would fail. So .ndjson files go by the type of their first
// resource (read from the file, never from its name): the types others
// refer to first, Provenance, which refers to everything, last. .json files
// keep name order among the rest; a Bundle keeps its own entry order.
//
// The order is only a good first guess: Run also defers whatever waits for
// a conditional reference to later rounds (see waitsForReference), which is
// what makes the import right for any order and any type.

// referredTo are the types others refer to, each after those it refers to
// itself: a Location names its managing Organization, a PractitionerRole
// its Practitioner, Organization and Location, and a clinical resource its
// Patient and Encounter.
var referredTo = []string{"Organization", "Location", "Practitioner", "PractitionerRole", "Patient", "Encounter"}

// rankOf places a file of resources of type typ ("" for a .json file).
func rankOf(typ string) int {
	for i, t := range referredTo {
		if t == typ {
			return i
		}
	}
	if typ == "Provenance" {
		return len(referredTo) + 1
	}
	return len(referredTo)
}

// inspect reads the head of an .ndjson file for its place in the order and,
// when its first line is no data (no resourceType, or an
// OperationOutcome), the whole file for whether it is a bulk export's log
// or error file, which is skipped with skip saying why. A file it cannot
// read is left to the import to report.
func inspect(path string) (rank int, skip string) {
	if !strings.EqualFold(filepath.Ext(path), ".ndjson") {
		return rankOf(""), ""
	}
	first, ok := firstLine(path)
	if !ok {
		return rankOf(""), ""
	}
	typ, has := topLevelType(first)
	if has && typ != "OperationOutcome" {
		return rankOf(typ), ""
	}
	return rankOf(typ), bulkLog(path)
}

func newScanner(f *os.File) *bufio.Scanner {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	return sc
}

func firstLine(path string) ([]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := newScanner(f)
	for sc.Scan() {
		if text := bytes.TrimSpace(sc.Bytes()); len(text) > 0 {
			return text, true
		}
	}
	return nil, false
}

// topLevelType returns the resourceType of a JSON object; has is false for
// an object without one (or anything that is no JSON object).
func topLevelType(line []byte) (typ string, has bool) {
	if len(line) == 0 || line[0] != '{' {
		return "", false
	}
	var head map[string]json.RawMessage
	if err := json.Unmarshal(line, &head); err != nil {
		return "", false
	}
	raw, ok := head["resourceType"] // exact key: Unmarshal into a struct would ignore case
	if !ok {
		return "", false
	}
	if err := json.Unmarshal(raw, &typ); err != nil {
		return "", true // a resourceType of the wrong kind is a bad resource, not a log
	}
	return typ, true
}

// bulkLog says why path is to be skipped, or "" when it is not a bulk
// export's log or error file. A log (the SMART bulk-data-client's
// log.ndjson: kickoff, status, manifest and download events) is JSON
// objects without a resourceType; an error file (the manifest's "error"
// entries) is OperationOutcomes. Every line must be one or the other, so a
// file of resources with a bad line among them still fails as bad data.
func bulkLog(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := newScanner(f)
	var logLines, outcomes int
	for sc.Scan() {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if !json.Valid(text) {
			return ""
		}
		switch typ, has := topLevelType(text); {
		case !has && text[0] == '{':
			logLines++
		case has && typ == "OperationOutcome":
			outcomes++
		default:
			return ""
		}
		if logLines > 0 && outcomes > 0 {
			return ""
		}
	}
	switch {
	case sc.Err() != nil:
		return ""
	case logLines > 0:
		return "a bulk export log, not FHIR resources"
	case outcomes > 0:
		return fmt.Sprintf("the %d OperationOutcome(s) of a bulk export's errors, not data to store", outcomes)
	}
	return ""
}
