package web

import (
	"net/http"
	"strconv"
	"time"

	"carefront/internal/accesslog"
	"carefront/internal/apperr"
)

// "Who viewed my record": the audit trail's records about the record,
// read back by package accesslog, filterable by period and by who.

// accessLogPeriods are the periods the filter offers, in days (0: all).
var accessLogPeriods = []int{30, 90, 365, 0}

// accessLogWho are the groups the filter offers ("" is everyone).
var accessLogWho = []string{"", accesslog.WhoYou, accesslog.WhoCaregiver, accesslog.WhoClinic, accesslog.WhoApp, accesslog.WhoLink}

type accessLogPage struct {
	*accesslog.Page
	Period  int
	Who     string
	Periods []int
	Whos    []string
}

// showAccessLog shows the log of the record the request is for: the
// patient's own, or one a caregiver holds with full access (not a
// teenager's: the log could reveal what is hidden from a parent).
func (s *Server) showAccessLog(w http.ResponseWriter, r *http.Request) error {
	d, err := s.buildAccessLog(w, r)
	if d == nil {
		return err
	}
	return s.render(w, r, "access_log", s.recordPage(w, r, "log.title", d))
}

// apiAccessLog is the log as JSON.
func (s *Server) apiAccessLog(w http.ResponseWriter, r *http.Request) error {
	d, err := s.buildAccessLog(w, r)
	if d == nil {
		return err
	}
	return writeView(w, d.Page)
}

func (s *Server) buildAccessLog(w http.ResponseWriter, r *http.Request) (*accessLogPage, error) {
	qv := r.URL.Query()
	d := &accessLogPage{Period: 90, Who: qv.Get("who"), Periods: accessLogPeriods, Whos: accessLogWho}
	if v := qv.Get("period"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n != 30 && n != 90 && n != 365) {
			return nil, apperr.New(apperr.Invalid, "period must be 30, 90, 365 or 0 (all)")
		}
		d.Period = n
	}
	valid := false
	for _, x := range accessLogWho {
		valid = valid || x == d.Who
	}
	if !valid {
		return nil, apperr.New(apperr.Invalid, "who must be you, caregiver, clinic, app or link")
	}
	var before int64
	if v := qv.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, apperr.New(apperr.Invalid, "before must be a positive number")
		}
		before = n
	}
	u, req := s.patient(w, r)
	if u == nil || s.opts.AccessLog == nil {
		if u != nil {
			return nil, apperr.New(apperr.NotFound, "the access log is not available")
		}
		return nil, nil
	}
	if p := req.Principal; p.Role != "" || (p.Proxy != nil && (len(p.Proxy.Kinds) > 0 || p.Proxy.HidesSensitive(p.At))) {
		// Staff, and caregivers who may not see all of the record, do not
		// see who else looked at it.
		if err := s.opts.Clinical.Refused(r.Context(), *req, "access-log-not-permitted"); err != nil {
			return nil, err
		}
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Only the person whose record this is, or a caregiver with full access, can see who viewed it."))
		return nil, nil
	}
	q := accesslog.Query{Patient: req.Principal.Patient, Who: d.Who, Before: before, Viewer: req.Principal.User, ViewerIsPatient: !req.Principal.Caregiver}
	if d.Period > 0 {
		q.From = s.now().Add(-time.Duration(d.Period) * 24 * time.Hour)
	}
	// Reading the log is an access to the record like any view: audited.
	v, err := s.opts.Clinical.Open(r.Context(), *req, "access-log")
	if err != nil {
		return nil, err
	}
	pg, err := s.opts.AccessLog.Read(r.Context(), q)
	if cerr := v.Close(r.Context(), err); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	d.Page = pg
	return d, nil
}
