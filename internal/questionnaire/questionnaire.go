// Package questionnaire reads FHIR R4 Questionnaires for people to fill
// in, checks what they answered, and writes the QuestionnaireResponse.
//
// It handles the item types a pre-visit form needs: group, display,
// string, text, boolean, date, integer and decimal (with the minValue and
// maxValue extensions), choice and open-choice (answerOption with
// valueCoding, valueString or valueInteger), required items, maxLength,
// and enableWhen (every operator R4 defines, with enableBehavior all or
// any). An item that is not enabled is neither required nor kept. Other
// item types (attachment, reference, quantity, time, dateTime, url) are
// refused when the Questionnaire is read, so a form is never shown that
// cannot be answered.
//
// Answers arrive as form values keyed by linkId; checking them is pure
// (no I/O), so it is tested and fuzzed on its own.
package questionnaire

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"carefront/internal/apperr"
)

const (
	extMin = "http://hl7.org/fhir/StructureDefinition/minValue"
	extMax = "http://hl7.org/fhir/StructureDefinition/maxValue"
	// MaxAnswer bounds any one free-text answer.
	MaxAnswer = 2000
)

// Questionnaire is a form to fill in.
type Questionnaire struct {
	ID, URL, Title string
	Items          []*Item
	byLink         map[string]*Item
}

// Item is one question, group or text to read.
type Item struct {
	LinkID, Text, Type string
	Required           bool
	MaxLength          int
	Min, Max           *float64
	Options            []Option
	EnableWhen         []EnableWhen
	EnableAny          bool // enableBehavior "any"
	Items              []*Item
}

// Option is one answer offered for a choice.
type Option struct {
	Value string // what the form sends: the code, the string, or the integer
	Label string
	// System is the Coding's system, for valueCoding options.
	System string
	kind   string // coding, string, integer
}

// EnableWhen shows an item only when another item's answer compares so.
type EnableWhen struct {
	Question string `json:"q"`
	Operator string `json:"op"` // exists = != > < >= <=
	Answer   string `json:"v"`  // the answer compared with, as a form value
	// Type is the type of the question named, by which answers compare
	// (numbers as numbers, the rest as text).
	Type string `json:"t"`
}

var supported = []string{"group", "display", "string", "text", "boolean", "date", "integer", "decimal", "choice", "open-choice"}

type rawItem struct {
	LinkID         string          `json:"linkId"`
	Text           string          `json:"text"`
	Type           string          `json:"type"`
	Required       bool            `json:"required"`
	Repeats        bool            `json:"repeats"`
	MaxLength      int             `json:"maxLength"`
	EnableBehavior string          `json:"enableBehavior"`
	Extension      []rawExt        `json:"extension"`
	AnswerOption   []rawOption     `json:"answerOption"`
	EnableWhen     []rawEnableWhen `json:"enableWhen"`
	Item           []rawItem       `json:"item"`
}

type rawExt struct {
	URL          string   `json:"url"`
	ValueInteger *int64   `json:"valueInteger"`
	ValueDecimal *float64 `json:"valueDecimal"`
}

type rawCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type rawOption struct {
	ValueCoding  *rawCoding `json:"valueCoding"`
	ValueString  *string    `json:"valueString"`
	ValueInteger *int64     `json:"valueInteger"`
}

type rawEnableWhen struct {
	Question      string     `json:"question"`
	Operator      string     `json:"operator"`
	AnswerBoolean *bool      `json:"answerBoolean"`
	AnswerInteger *int64     `json:"answerInteger"`
	AnswerDecimal *float64   `json:"answerDecimal"`
	AnswerString  *string    `json:"answerString"`
	AnswerDate    *string    `json:"answerDate"`
	AnswerCoding  *rawCoding `json:"answerCoding"`
}

// Parse reads a Questionnaire resource. One it cannot render faithfully
// (an unsupported item type, repeats, a linkId used twice, an enableWhen
// naming no item) is an error.
func Parse(raw []byte) (*Questionnaire, error) {
	var body struct {
		ResourceType string    `json:"resourceType"`
		ID           string    `json:"id"`
		URL          string    `json:"url"`
		Title        string    `json:"title"`
		Item         []rawItem `json:"item"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.ResourceType != "Questionnaire" {
		return nil, apperr.New(apperr.Invalid, "not a Questionnaire")
	}
	q := &Questionnaire{ID: body.ID, URL: body.URL, Title: body.Title, byLink: map[string]*Item{}}
	var err error
	if q.Items, err = q.items(body.Item); err != nil {
		return nil, err
	}
	var check func([]*Item) error
	check = func(items []*Item) error {
		for _, it := range items {
			for i, ew := range it.EnableWhen {
				other, ok := q.byLink[ew.Question]
				if !ok {
					return apperr.New(apperr.Invalid, "item %s: enableWhen names no item %q", it.LinkID, ew.Question)
				}
				it.EnableWhen[i].Type = other.Type
			}
			if err := check(it.Items); err != nil {
				return err
			}
		}
		return nil
	}
	if err := check(q.Items); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Questionnaire) items(raws []rawItem) ([]*Item, error) {
	var out []*Item
	for _, r := range raws {
		if r.LinkID == "" {
			return nil, apperr.New(apperr.Invalid, "an item has no linkId")
		}
		if _, dup := q.byLink[r.LinkID]; dup {
			return nil, apperr.New(apperr.Invalid, "linkId %q is used twice", r.LinkID)
		}
		if !slices.Contains(supported, r.Type) || r.Repeats {
			return nil, apperr.New(apperr.Invalid, "item %s: type %q (repeats %v) cannot be shown", r.LinkID, r.Type, r.Repeats)
		}
		it := &Item{LinkID: r.LinkID, Text: r.Text, Type: r.Type, Required: r.Required, MaxLength: r.MaxLength, EnableAny: r.EnableBehavior == "any"}
		q.byLink[r.LinkID] = it
		for _, e := range r.Extension {
			var v *float64
			switch {
			case e.ValueInteger != nil:
				f := float64(*e.ValueInteger)
				v = &f
			case e.ValueDecimal != nil:
				v = e.ValueDecimal
			}
			switch e.URL {
			case extMin:
				it.Min = v
			case extMax:
				it.Max = v
			}
		}
		for _, o := range r.AnswerOption {
			switch {
			case o.ValueCoding != nil:
				label := o.ValueCoding.Display
				if label == "" {
					label = o.ValueCoding.Code
				}
				it.Options = append(it.Options, Option{Value: o.ValueCoding.Code, Label: label, System: o.ValueCoding.System, kind: "coding"})
			case o.ValueString != nil:
				it.Options = append(it.Options, Option{Value: *o.ValueString, Label: *o.ValueString, kind: "string"})
			case o.ValueInteger != nil:
				s := strconv.FormatInt(*o.ValueInteger, 10)
				it.Options = append(it.Options, Option{Value: s, Label: s, kind: "integer"})
			}
		}
		if (it.Type == "choice" || it.Type == "open-choice") && len(it.Options) == 0 {
			return nil, apperr.New(apperr.Invalid, "item %s: a choice offers no answers", r.LinkID)
		}
		for _, ew := range r.EnableWhen {
			e := EnableWhen{Question: ew.Question, Operator: ew.Operator}
			switch {
			case ew.AnswerBoolean != nil:
				e.Answer = strconv.FormatBool(*ew.AnswerBoolean)
			case ew.AnswerInteger != nil:
				e.Answer = strconv.FormatInt(*ew.AnswerInteger, 10)
			case ew.AnswerDecimal != nil:
				e.Answer = strconv.FormatFloat(*ew.AnswerDecimal, 'f', -1, 64)
			case ew.AnswerString != nil:
				e.Answer = *ew.AnswerString
			case ew.AnswerDate != nil:
				e.Answer = *ew.AnswerDate
			case ew.AnswerCoding != nil:
				e.Answer = ew.AnswerCoding.Code
			}
			if !slices.Contains([]string{"exists", "=", "!=", ">", "<", ">=", "<="}, e.Operator) {
				return nil, apperr.New(apperr.Invalid, "item %s: enableWhen operator %q", r.LinkID, e.Operator)
			}
			it.EnableWhen = append(it.EnableWhen, e)
		}
		var err error
		if it.Items, err = q.items(r.Item); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// Answers are what a person typed or chose, by linkId ("" or absent for
// no answer). For open-choice, the value "other" with Other[linkId] is a
// free-text answer.
type Answers struct {
	Values map[string]string
	Other  map[string]string
}

// Item returns the item with linkID.
func (q *Questionnaire) Item(linkID string) *Item { return q.byLink[linkID] }

// Enabled reports whether an item is shown, given the answers so far: all
// (or, with enableBehavior any, one) of its conditions hold, and its
// group is enabled.
func (q *Questionnaire) Enabled(it *Item, a Answers) bool {
	return q.enabled(it, a, 0)
}

func (q *Questionnaire) enabled(it *Item, a Answers, depth int) bool {
	if len(it.EnableWhen) == 0 || depth > 32 {
		return depth <= 32
	}
	any, all := false, true
	for _, ew := range it.EnableWhen {
		other := q.byLink[ew.Question]
		got := strings.TrimSpace(a.Values[ew.Question])
		if other != nil && !q.enabled(other, a, depth+1) {
			got = "" // a question not shown has no answer
		}
		ok := compare(other, got, ew)
		any = any || ok
		all = all && ok
	}
	if it.EnableAny {
		return any
	}
	return all
}

func compare(other *Item, got string, ew EnableWhen) bool {
	if ew.Operator == "exists" {
		return (got != "") == (ew.Answer == "true")
	}
	if got == "" {
		return false
	}
	typ := ""
	if other != nil {
		typ = other.Type
	}
	var c int
	switch typ {
	case "integer", "decimal":
		g, err1 := strconv.ParseFloat(got, 64)
		w, err2 := strconv.ParseFloat(ew.Answer, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		c = cmpFloat(g, w)
	default: // strings, codes, booleans and ISO dates compare as text
		c = strings.Compare(got, ew.Answer)
	}
	switch ew.Operator {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case "<":
		return c < 0
	case ">=":
		return c >= 0
	case "<=":
		return c <= 0
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Problem is an answer that cannot be kept: its linkId and a code
// (required, not-integer, not-decimal, not-date, not-boolean, below-min,
// above-max, not-option, too-long), with the bound where there is one.
type Problem struct {
	LinkID, Code string
	Bound        string
}

func (p Problem) Error() string { return fmt.Sprintf("%s: %s %s", p.LinkID, p.Code, p.Bound) }

// Check checks the answers and returns the QuestionnaireResponse items
// for the enabled, answered questions, or every problem. Answers to items
// not enabled are dropped.
func (q *Questionnaire) Check(a Answers) ([]any, []Problem) {
	var problems []Problem
	items := q.check(q.Items, a, &problems)
	return items, problems
}

func (q *Questionnaire) check(items []*Item, a Answers, problems *[]Problem) []any {
	var out []any
	for _, it := range items {
		if !q.Enabled(it, a) || it.Type == "display" {
			continue
		}
		if it.Type == "group" {
			if kids := q.check(it.Items, a, problems); len(kids) > 0 {
				out = append(out, map[string]any{"linkId": it.LinkID, "text": it.Text, "item": kids})
			}
			continue
		}
		v := strings.TrimSpace(strings.ReplaceAll(a.Values[it.LinkID], "\r\n", "\n"))
		if v == "" {
			if it.Required {
				*problems = append(*problems, Problem{LinkID: it.LinkID, Code: "required"})
			}
			continue
		}
		ans, p := answer(it, v, strings.TrimSpace(a.Other[it.LinkID]))
		if p != nil {
			*problems = append(*problems, *p)
			continue
		}
		entry := map[string]any{"linkId": it.LinkID, "text": it.Text, "answer": []any{ans}}
		if kids := q.check(it.Items, a, problems); len(kids) > 0 {
			entry["item"] = kids
		}
		out = append(out, entry)
	}
	return out
}

// answer reads one value as the item's type.
func answer(it *Item, v, other string) (map[string]any, *Problem) {
	bad := func(code string, bound ...string) *Problem {
		p := &Problem{LinkID: it.LinkID, Code: code}
		if len(bound) > 0 {
			p.Bound = bound[0]
		}
		return p
	}
	limit := MaxAnswer
	if it.MaxLength > 0 {
		limit = min(limit, it.MaxLength)
	}
	if utf8.RuneCountInString(v) > limit || !utf8.ValidString(v) {
		return nil, bad("too-long", strconv.Itoa(limit))
	}
	inRange := func(f float64) *Problem {
		if it.Min != nil && f < *it.Min {
			return bad("below-min", strconv.FormatFloat(*it.Min, 'f', -1, 64))
		}
		if it.Max != nil && f > *it.Max {
			return bad("above-max", strconv.FormatFloat(*it.Max, 'f', -1, 64))
		}
		return nil
	}
	switch it.Type {
	case "string", "text":
		if it.Type == "string" && strings.ContainsAny(v, "\n") {
			v = strings.Join(strings.Fields(v), " ")
		}
		return map[string]any{"valueString": v}, nil
	case "boolean":
		if v != "true" && v != "false" {
			return nil, bad("not-boolean")
		}
		return map[string]any{"valueBoolean": v == "true"}, nil
	case "date":
		t, err := time.Parse("2006-01-02", v)
		if err != nil || t.Year() < 1900 || t.Year() > 2200 {
			return nil, bad("not-date")
		}
		return map[string]any{"valueDate": v}, nil
	case "integer":
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, bad("not-integer")
		}
		if p := inRange(float64(n)); p != nil {
			return nil, p
		}
		return map[string]any{"valueInteger": n}, nil
	case "decimal":
		f, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, bad("not-decimal")
		}
		if p := inRange(f); p != nil {
			return nil, p
		}
		return map[string]any{"valueDecimal": f}, nil
	case "choice", "open-choice":
		for _, o := range it.Options {
			if o.Value != v {
				continue
			}
			switch o.kind {
			case "coding":
				c := map[string]any{"code": o.Value, "display": o.Label}
				if o.System != "" {
					c["system"] = o.System
				}
				return map[string]any{"valueCoding": c}, nil
			case "integer":
				n, _ := strconv.ParseInt(o.Value, 10, 64)
				return map[string]any{"valueInteger": n}, nil
			}
			return map[string]any{"valueString": o.Value}, nil
		}
		if it.Type == "open-choice" && v == "other" {
			if other == "" {
				return nil, bad("required")
			}
			if utf8.RuneCountInString(other) > limit {
				return nil, bad("too-long", strconv.Itoa(limit))
			}
			return map[string]any{"valueString": other}, nil
		}
		return nil, bad("not-option")
	}
	return nil, bad("not-option")
}

// Response writes the QuestionnaireResponse of checked items.
func (q *Questionnaire) Response(id, patient string, items []any, authored time.Time, extra map[string]any) map[string]any {
	r := map[string]any{"resourceType": "QuestionnaireResponse", "id": id, "status": "completed",
		"subject":  map[string]any{"reference": "Patient/" + patient},
		"authored": authored.UTC().Format(time.RFC3339),
		"item":     items}
	if q.URL != "" {
		r["questionnaire"] = q.URL
	} else {
		r["questionnaire"] = "Questionnaire/" + q.ID
	}
	for k, v := range extra {
		r[k] = v
	}
	if len(items) == 0 {
		delete(r, "item")
	}
	return r
}
