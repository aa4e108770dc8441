package views

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
)

// Trend is one test's results over time: one series, or one per part (a
// blood pressure's systolic and diastolic), oldest first, with the
// reference range of the newest result as a band.
type Trend struct {
	Name      string   `json:"name"`
	Key       string   `json:"key"`
	Unit      string   `json:"unit,omitempty"`
	About     string   `json:"about,omitempty"`
	LearnMore string   `json:"learnMore,omitempty"`
	Low       *float64 `json:"low,omitempty"`
	High      *float64 `json:"high,omitempty"`
	Series    []Series `json:"series"`
	// Held counts this test's results that wait for review.
	Held int `json:"held,omitempty"`
}

// Series is one line of a trend.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Point is one result on a trend.
type Point struct {
	Date           time.Time `json:"date"`
	Value          float64   `json:"value"`
	Text           string    `json:"text"`
	Interpretation string    `json:"interpretation,omitempty"`
}

// trendLimit bounds the results one trend reads.
const trendLimit = 1000

// ParseKey checks a result key from a URL: a LOINC code, or system|code.
func ParseKey(key string) (system, code string, err error) {
	if loincPattern.MatchString(key) {
		return loinc, key, nil
	}
	sys, c, ok := strings.Cut(key, "|")
	if !ok || c == "" || len(key) > 300 || strings.ContainsAny(key, ",$\\") || !utf8.ValidString(key) ||
		strings.IndexFunc(key, unicode.IsControl) >= 0 {
		return "", "", apperr.New(apperr.NotFound, "no such test")
	}
	if _, err := url.Parse(sys); err != nil || sys == "" {
		return "", "", apperr.New(apperr.NotFound, "no such test")
	}
	return sys, c, nil
}

// Trend builds the trend of the test with key. An unknown key, or one with
// no result the person may see, is NotFound.
func (b *Builder) Trend(ctx context.Context, req clinical.Request, key, lang string) (*Trend, error) {
	sys, code, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	return build(ctx, b, req, "result-trend", lang, func(s *session) (*Trend, error) { return s.trend(ctx, key, sys, code, lang) })
}

func (s *session) trend(ctx context.Context, key, sys, code, lang string) (*Trend, error) {
	obs, held, err := s.search(ctx, "Observation", url.Values{"code": {sys + "|" + code}, "_sort": {"date"}}, trendLimit)
	if err != nil {
		return nil, err
	}
	if len(obs) == 0 {
		if len(held) > 0 {
			return &Trend{Key: key, Name: conceptText(held[0]["code"]), Series: []Series{}, Held: len(held)}, nil
		}
		return nil, apperr.New(apperr.NotFound, "no such test")
	}
	newest := obs[len(obs)-1]
	t := &Trend{Key: key, Name: conceptText(newest["code"]), Series: []Series{}, Held: len(held)}
	if sys == loinc {
		t.About, t.LearnMore = s.b.Dict.About(code, lang), LearnMore(code, lang)
		if n := s.b.Dict.Name(code, lang); n != "" {
			t.Name = n
		}
	}
	if q := obj(newest["valueQuantity"]); q != nil {
		t.Unit = unit(q)
		t.Low, t.High = rangeBounds(newest["referenceRange"])
	}
	series := map[string]int{}
	add := func(name string, m map[string]any, date time.Time) {
		v, ok := numericValue(m)
		if !ok {
			return
		}
		i, ok := series[name]
		if !ok {
			i = len(t.Series)
			series[name] = i
			t.Series = append(t.Series, Series{Name: name, Points: []Point{}})
		}
		val, u := value(m)
		if t.Unit == "" {
			t.Unit = u
		}
		t.Series[i].Points = append(t.Series[i].Points, Point{Date: date, Value: v, Text: val, Interpretation: interpret(m)})
	}
	for _, m := range obs {
		d := obsDate(m)
		if m["valueQuantity"] != nil {
			add(t.Name, m, d)
			continue
		}
		for _, c := range list(m["component"]) {
			name := conceptText(obj(c)["code"])
			if n := s.b.Dict.Name(codeIn(obj(c)["code"], loinc), lang); n != "" {
				name = n
			}
			add(name, obj(c), d)
		}
	}
	if len(t.Series) == 0 {
		// Results without numbers (text, coded values) have no chart; the
		// results list shows them.
		return nil, apperr.New(apperr.NotFound, "no such test")
	}
	return t, nil
}
