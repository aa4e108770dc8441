package web

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carefront/internal/views"
)

// showResultTrend shows one test's results over time: a chart and the same
// data as a table.
func (s *Server) showResultTrend(w http.ResponseWriter, r *http.Request) error {
	t, err := s.buildTrend(w, r)
	if t == nil {
		return err
	}
	p := s.recordPage(w, r, "trend.title", nil)
	p.Data = trendPage{Trend: t, Chart: chartOf(t, p)}
	return s.render(w, r, "result_trend", p)
}

func (s *Server) apiResultTrend(w http.ResponseWriter, r *http.Request) error {
	t, err := s.buildTrend(w, r)
	if t == nil {
		return err
	}
	return writeView(w, t)
}

func (s *Server) buildTrend(w http.ResponseWriter, r *http.Request) (*views.Trend, error) {
	u, req := s.patient(w, r)
	if u == nil || s.shares(w, r, req, "Observation") {
		return nil, nil
	}
	return s.opts.Views.Trend(r.Context(), *req, r.PathValue("code"), s.lang(w, r))
}

type trendPage struct {
	Trend *views.Trend
	Chart *chart
}

// chart is a trend laid out for the page's SVG: a plot area, axes with
// ticks, the reference range as a band, and each series' line and points.
// Nil when there are fewer than two points to draw.
type chart struct {
	Width, Height          int
	Left, Right, Top, Bot  float64
	YTicks, XTicks         []tick
	BandTop, BandHeight    float64
	HasBand                bool
	Series                 []chartSeries
	First, Last            string
	Count                  int
	Min, Max               string
	LatestText, LatestDate string
}

type tick struct {
	Pos    float64
	Label  string
	Anchor string // text-anchor: start, middle or end
}

type chartSeries struct {
	Name   string
	Path   string
	Dashed bool
	Points []chartPoint
}

type chartPoint struct {
	X, Y           float64
	Label          string
	Interpretation string
	// Shape is the marker: circle (in range or no range), up (high), down
	// (low) or diamond (critical or abnormal), so status never rests on
	// colour alone.
	Shape string
	Path  string
}

func chartOf(t *views.Trend, p page) *chart {
	n := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	var first, last time.Time
	for _, s := range t.Series {
		for _, pt := range s.Points {
			n++
			lo, hi = math.Min(lo, pt.Value), math.Max(hi, pt.Value)
			if first.IsZero() || pt.Date.Before(first) {
				first = pt.Date
			}
			if pt.Date.After(last) {
				last = pt.Date
			}
		}
	}
	if n < 2 {
		return nil
	}
	c := &chart{Width: 480, Height: 300, Left: 52, Right: 464, Top: 36, Bot: 252, Count: n,
		First: p.Date(first), Last: p.Date(last)}
	// The normal range is always in view, so the band shows where the
	// results stand against it.
	for _, b := range []*float64{t.Low, t.High} {
		if b != nil {
			lo, hi = math.Min(lo, *b), math.Max(hi, *b)
		}
	}
	c.Min, c.Max = fmtNum(lo), fmtNum(hi)
	step := niceStep((hi - lo) / 4)
	if step == 0 {
		step = niceStep(math.Max(math.Abs(hi), 1) / 4)
	}
	ymin, ymax := math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	if ymax == ymin {
		ymin, ymax = ymin-step, ymax+step
	}
	y := func(v float64) float64 { return round2(c.Bot - (v-ymin)/(ymax-ymin)*(c.Bot-c.Top)) }
	span := last.Sub(first).Seconds()
	x := func(d time.Time) float64 {
		if span == 0 {
			return round2((c.Left + c.Right) / 2)
		}
		return round2(c.Left + d.Sub(first).Seconds()/span*(c.Right-c.Left))
	}
	for v := ymin; v <= ymax+step/2; v += step {
		c.YTicks = append(c.YTicks, tick{Pos: y(v), Label: fmtNum(v)})
	}
	for i := 0; i < 3; i++ {
		d := first.Add(time.Duration(float64(last.Sub(first)) * float64(i) / 2))
		c.XTicks = append(c.XTicks, tick{Pos: x(d), Label: p.ShortDate(d), Anchor: []string{"start", "middle", "end"}[i]})
	}
	if t.Low != nil || t.High != nil {
		top, bot := ymax, ymin
		if t.High != nil {
			top = *t.High
		}
		if t.Low != nil {
			bot = *t.Low
		}
		c.HasBand, c.BandTop, c.BandHeight = true, y(top), round2(y(bot)-y(top))
	}
	for i, s := range t.Series {
		cs := chartSeries{Name: s.Name, Dashed: i%2 == 1}
		var path strings.Builder
		for j, pt := range s.Points {
			px, py := x(pt.Date), y(pt.Value)
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%s %s ", cmd, fmtNum(px), fmtNum(py))
			label := p.Date(pt.Date) + ": " + strings.TrimSpace(pt.Text+" "+t.Unit)
			if pt.Interpretation != "" {
				label += " (" + p.T("result.interp."+pt.Interpretation) + ")"
			}
			if len(t.Series) > 1 {
				label = s.Name + ", " + label
			}
			cp := chartPoint{X: px, Y: py, Label: label, Interpretation: pt.Interpretation, Shape: shapeOf(pt.Interpretation)}
			cp.Path = markerPath(cp.Shape, px, py)
			cs.Points = append(cs.Points, cp)
			c.LatestText, c.LatestDate = strings.TrimSpace(pt.Text+" "+t.Unit), p.Date(pt.Date)
		}
		cs.Path = strings.TrimSpace(path.String())
		c.Series = append(c.Series, cs)
	}
	return c
}

func shapeOf(interp string) string {
	switch interp {
	case "high":
		return "up"
	case "low":
		return "down"
	case "critical", "abnormal":
		return "diamond"
	}
	return "circle"
}

// markerPath draws a point's marker as a path (a circle is drawn by the
// template).
func markerPath(shape string, x, y float64) string {
	const r = 6.0
	switch shape {
	case "up":
		return fmt.Sprintf("M%s %s L%s %s L%s %s Z", fmtNum(x), fmtNum(y-r), fmtNum(x+r), fmtNum(y+r), fmtNum(x-r), fmtNum(y+r))
	case "down":
		return fmt.Sprintf("M%s %s L%s %s L%s %s Z", fmtNum(x), fmtNum(y+r), fmtNum(x+r), fmtNum(y-r), fmtNum(x-r), fmtNum(y-r))
	case "diamond":
		return fmt.Sprintf("M%s %s L%s %s L%s %s L%s %s Z", fmtNum(x), fmtNum(y-r), fmtNum(x+r), fmtNum(y), fmtNum(x), fmtNum(y+r), fmtNum(x-r), fmtNum(y))
	}
	return ""
}

// niceStep rounds a raw tick step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsInf(raw, 0) || math.IsNaN(raw) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func fmtNum(v float64) string { return strconv.FormatFloat(round2(v), 'f', -1, 64) }
