package questionnaire_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"carefront/internal/questionnaire"
)

const form = `{"resourceType":"Questionnaire","id":"pre","url":"https://clinic.example/q/pre","title":"Before your visit","item":[
 {"linkId":"intro","type":"display","text":"A few questions."},
 {"linkId":"topic","type":"text","text":"What would you like to discuss?","required":true,"maxLength":200},
 {"linkId":"pain","type":"boolean","text":"Are you in pain?","required":true},
 {"linkId":"pain-level","type":"integer","text":"How bad, 0 to 10?","required":true,
  "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":0},{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueInteger":10}],
  "enableWhen":[{"question":"pain","operator":"=","answerBoolean":true}]},
 {"linkId":"smoke","type":"choice","text":"Do you smoke?","answerOption":[
  {"valueCoding":{"system":"http://snomed.info/sct","code":"8517006","display":"Former smoker"}},
  {"valueCoding":{"system":"http://snomed.info/sct","code":"77176002","display":"Smoker"}},
  {"valueCoding":{"system":"http://snomed.info/sct","code":"266919005","display":"Never smoked"}}]},
 {"linkId":"per-day","type":"integer","text":"Cigarettes a day","enableWhen":[{"question":"smoke","operator":"=","answerCoding":{"code":"77176002"}}],"required":true},
 {"linkId":"weight","type":"decimal","text":"Weight (kg)","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueDecimal":20.5},{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueDecimal":300}]},
 {"linkId":"last-check","type":"date","text":"Last blood sugar check"},
 {"linkId":"sleep","type":"open-choice","text":"How do you sleep?","answerOption":[{"valueString":"Well"},{"valueString":"Badly"}]},
 {"linkId":"heavy","type":"string","text":"Why so heavy?","enableBehavior":"any","enableWhen":[
  {"question":"weight","operator":">","answerDecimal":150},{"question":"weight","operator":"<","answerDecimal":40}]},
 {"linkId":"more","type":"group","text":"More","item":[{"linkId":"note","type":"string","text":"Anything else?"}]}
]}`

func parse(t *testing.T) *questionnaire.Questionnaire {
	t.Helper()
	q, err := questionnaire.Parse([]byte(form))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func answers(kv ...string) questionnaire.Answers {
	a := questionnaire.Answers{Values: map[string]string{}, Other: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.HasPrefix(kv[i], "other:") {
			a.Other[strings.TrimPrefix(kv[i], "other:")] = kv[i+1]
		} else {
			a.Values[kv[i]] = kv[i+1]
		}
	}
	return a
}

// TestAnswersBecomeAResponse: every supported type becomes its value[x];
// an item whose enableWhen does not hold is dropped, even if answered; a
// group keeps its answered children.
func TestAnswersBecomeAResponse(t *testing.T) {
	q := parse(t)
	items, problems := q.Check(answers("topic", "My sugar", "pain", "false", "pain-level", "7", "smoke", "77176002", "per-day", "5",
		"weight", "82,5", "last-check", "2026-11-20", "sleep", "other", "other:sleep", "Wake at 3am", "heavy", "ignored", "note", "Thanks"))
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	raw, _ := json.Marshal(q.Response("r1", "maria", items, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), nil))
	got := string(raw)
	for _, want := range []string{`"valueString":"My sugar"`, `"valueBoolean":false`, `"valueCoding":{"code":"77176002","display":"Smoker","system":"http://snomed.info/sct"}`,
		`"valueInteger":5`, `"valueDecimal":82.5`, `"valueDate":"2026-11-20"`, `"valueString":"Wake at 3am"`, `"linkId":"more"`, `"valueString":"Thanks"`,
		`"questionnaire":"https://clinic.example/q/pre"`, `"reference":"Patient/maria"`, `"status":"completed"`} {
		if !strings.Contains(got, want) {
			t.Errorf("response lacks %s:\n%s", want, got)
		}
	}
	for _, gone := range []string{"pain-level", "heavy", "intro"} {
		if strings.Contains(got, `"linkId":"`+gone+`"`) {
			t.Errorf("response keeps %s, which was not enabled (or is text to read)", gone)
		}
	}
}

// TestEnableWhen: each operator, any versus all, and an item whose
// question is itself hidden.
func TestEnableWhen(t *testing.T) {
	q := parse(t)
	for _, tc := range []struct {
		item string
		a    questionnaire.Answers
		want bool
	}{
		{"pain-level", answers("pain", "true"), true},
		{"pain-level", answers("pain", "false"), false},
		{"pain-level", answers(), false},
		{"per-day", answers("smoke", "77176002"), true},
		{"per-day", answers("smoke", "8517006"), false},
		{"heavy", answers("weight", "160"), true},
		{"heavy", answers("weight", "35"), true},
		{"heavy", answers("weight", "80"), false},
		{"heavy", answers("weight", "heavy"), false},
		{"topic", answers(), true},
	} {
		for _, ew := range q.Item(tc.item).EnableWhen {
			if ew.Type != q.Item(ew.Question).Type {
				t.Errorf("%s: a condition on %s compares as %q, want %q", tc.item, ew.Question, ew.Type, q.Item(ew.Question).Type)
			}
		}
		if got := q.Enabled(q.Item(tc.item), tc.a); got != tc.want {
			t.Errorf("%s with %v: enabled %v, want %v", tc.item, tc.a.Values, got, tc.want)
		}
	}
	chain, err := questionnaire.Parse([]byte(`{"resourceType":"Questionnaire","id":"c","item":[
	 {"linkId":"a","type":"boolean"},
	 {"linkId":"b","type":"string","enableWhen":[{"question":"a","operator":"=","answerBoolean":true}]},
	 {"linkId":"c","type":"string","enableWhen":[{"question":"b","operator":"exists","answerBoolean":true}]},
	 {"linkId":"d","type":"string","enableWhen":[{"question":"b","operator":"!=","answerString":"x"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if chain.Enabled(chain.Item("c"), answers("a", "false", "b", "left over")) {
		t.Error("c is shown though b, which it depends on, is hidden")
	}
	if !chain.Enabled(chain.Item("c"), answers("a", "true", "b", "y")) || !chain.Enabled(chain.Item("d"), answers("a", "true", "b", "y")) {
		t.Error("c or d hidden though b is answered")
	}
}

// TestBadAnswersAreRefused: a wrong type, out of range, not an offered
// option, too long, or missing where required: each named with its item,
// and no response.
func TestBadAnswersAreRefused(t *testing.T) {
	q := parse(t)
	base := []string{"topic", "My sugar", "pain", "false"}
	for _, tc := range []struct {
		kv   []string
		item string
		code string
	}{
		{[]string{"pain", "true"}, "pain-level", "required"},
		{[]string{"pain", "true", "pain-level", "eleven"}, "pain-level", "not-integer"},
		{[]string{"pain", "true", "pain-level", "11"}, "pain-level", "above-max"},
		{[]string{"pain", "true", "pain-level", "-1"}, "pain-level", "below-min"},
		{[]string{"pain", "maybe"}, "pain", "not-boolean"},
		{[]string{"weight", "20"}, "weight", "below-min"},
		{[]string{"weight", "NaN"}, "weight", "not-decimal"},
		{[]string{"last-check", "2026-02-30"}, "last-check", "not-date"},
		{[]string{"smoke", "cigars"}, "smoke", "not-option"},
		{[]string{"sleep", "other"}, "sleep", "required"},
		{[]string{"topic", strings.Repeat("x", 201)}, "topic", "too-long"},
		{[]string{"topic", ""}, "topic", "required"},
		{[]string{"smoke", "77176002"}, "per-day", "required"},
	} {
		kv := append(append([]string{}, base...), tc.kv...)
		items, problems := q.Check(answers(kv...))
		found := false
		for _, p := range problems {
			found = found || (p.LinkID == tc.item && p.Code == tc.code)
		}
		if !found {
			t.Errorf("%v: problems %v, want %s %s", tc.kv, problems, tc.item, tc.code)
		}
		_ = items
	}
}

// TestQuestionnairesThatCannotBeShownAreRefused: Parse refuses what it
// cannot render faithfully.
func TestQuestionnairesThatCannotBeShownAreRefused(t *testing.T) {
	for name, body := range map[string]string{
		"not a questionnaire": `{"resourceType":"Patient"}`,
		"attachment":          `{"resourceType":"Questionnaire","item":[{"linkId":"a","type":"attachment"}]}`,
		"repeats":             `{"resourceType":"Questionnaire","item":[{"linkId":"a","type":"string","repeats":true}]}`,
		"duplicate linkId":    `{"resourceType":"Questionnaire","item":[{"linkId":"a","type":"string"},{"linkId":"a","type":"date"}]}`,
		"dangling enableWhen": `{"resourceType":"Questionnaire","item":[{"linkId":"a","type":"string","enableWhen":[{"question":"z","operator":"exists","answerBoolean":true}]}]}`,
		"empty choice":        `{"resourceType":"Questionnaire","item":[{"linkId":"a","type":"choice"}]}`,
		"bad operator":        `{"resourceType":"Questionnaire","item":[{"linkId":"a","type":"string"},{"linkId":"b","type":"string","enableWhen":[{"question":"a","operator":"~","answerString":"x"}]}]}`,
	} {
		if _, err := questionnaire.Parse([]byte(body)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzCheck: no answers make Check panic, and every kept answer is of an
// enabled item.
func FuzzCheck(f *testing.F) {
	f.Add("true", "7", "77176002", "82.5", "2026-01-01", "other", "x")
	f.Fuzz(func(t *testing.T, pain, level, smoke, weight, date, sleep, other string) {
		q, err := questionnaire.Parse([]byte(form))
		if err != nil {
			t.Fatal(err)
		}
		a := answers("topic", "t", "pain", pain, "pain-level", level, "smoke", smoke, "weight", weight, "last-check", date, "sleep", sleep, "other:sleep", other)
		items, _ := q.Check(a)
		for _, it := range items {
			id := it.(map[string]any)["linkId"].(string)
			if !q.Enabled(q.Item(id), a) {
				t.Errorf("kept %s, which is not enabled", id)
			}
		}
	})
}
