package web

import (
	"encoding/json"
	"net/http"
	"strconv"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
)

// showRecordDownload offers the record as a FHIR file and as a printable
// summary; both ask the person to confirm it is them first.
func (s *Server) showRecordDownload(w http.ResponseWriter, r *http.Request) error {
	if u, req := s.patient(w, r); u == nil || s.noStaff(w, r, req) {
		return nil
	}
	return s.render(w, r, "record_download", s.recordPage(w, r, "download.title", nil))
}

// downloadAllowed applies step-up and the per-account budget (3 an hour)
// to a download. It returns the request to build for, or nil when it
// answered.
func (s *Server) downloadAllowed(w http.ResponseWriter, r *http.Request) *clinical.Request {
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil {
		return nil
	}
	_, req := s.patient(w, r)
	if req == nil || s.noStaff(w, r, req) {
		return nil
	}
	if s.opts.DownloadLimiter != nil {
		if ok, wait := s.opts.DownloadLimiter.Allow(r.Context(), "download:"+u.account.ID); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			s.renderError(w, r, apperr.New(apperr.RateLimited, "You have downloaded your record three times in the last hour. Please try again later."))
			return nil
		}
	}
	return req
}

// downloadRecordFHIR sends everything of the record the person may see as
// a FHIR R4 collection Bundle.
func (s *Server) downloadRecordFHIR(w http.ResponseWriter, r *http.Request) error {
	req := s.downloadAllowed(w, r)
	if req == nil {
		return nil
	}
	b, err := s.opts.Views.Export(r.Context(), *req)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(b, "", " ")
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="my-health-record.json"`)
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	_, err = w.Write(raw)
	return err
}

// showRecordPrint shows the printable summary of the record in the
// person's language.
func (s *Server) showRecordPrint(w http.ResponseWriter, r *http.Request) error {
	req := s.downloadAllowed(w, r)
	if req == nil {
		return nil
	}
	v, err := s.opts.Views.Printable(r.Context(), *req, s.lang(w, r))
	if err != nil {
		return err
	}
	p := s.newPage(w, r, "print.title")
	p.Data = v
	return s.render(w, r, "record_print", p)
}

// noStaff refuses staff the download: it is the patient's (and their
// caregivers') copy of the record, not a clinic tool. It reports whether
// it answered.
func (s *Server) noStaff(w http.ResponseWriter, r *http.Request, req *clinical.Request) bool {
	if req.Principal.Role == "" {
		return false
	}
	s.renderError(w, r, apperr.New(apperr.Forbidden, "Staff cannot download a patient's record here."))
	return true
}
