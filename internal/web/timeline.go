package web

import (
	"net/http"

	"carefront/internal/views"
)

// showTimeline shows the record by date, with filters by kind (?kind=)
// and a page at a time (?before=).
func (s *Server) showTimeline(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildTimeline(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "timeline", s.recordPage(w, r, "timeline.title", timelinePage{v, views.TimelineKinds}))
}

type timelinePage struct {
	*views.Timeline
	AllKinds []string
}

func (s *Server) apiTimeline(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildTimeline(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildTimeline(w http.ResponseWriter, r *http.Request) (*views.Timeline, error) {
	q := r.URL.Query()
	before, err := views.ParseBefore(q.Get("before"))
	if err != nil {
		return nil, err
	}
	kinds, err := views.ParseKinds(q["kind"])
	if err != nil {
		return nil, err
	}
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	return s.opts.Views.Timeline(r.Context(), *req, views.TimelineOptions{Kinds: kinds, Before: before, Lang: s.lang(w, r)})
}
