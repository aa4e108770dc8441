package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/boombuler/barcode/qr"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/shl"
)

// SMART Health Links: the patient's page to make, list and revoke links
// (/sharing/links), the recipient's manifest and file endpoints (open to
// any origin, no cookies) and carefront's own viewer page. The rules
// live in package shl.

// linksPage is the share links page.
type linksPage struct {
	*form
	Links    []linkCard
	Contents []string
	Created  *shl.Created
	QR       template.HTML
}

type linkCard struct {
	shl.Link
	State string // active, expired, revoked, locked
}

// linkOwner lets through the patient, or a caregiver with full access
// (for=ID), to make and see the record's links; it returns the owner's
// request, or nil when it answered.
func (s *Server) linkOwner(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	if s.opts.Links == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "share links are not available"))
		return nil, nil
	}
	// A caregiver with full access may share what they may see (a teen's
	// parent never their sensitive records); they see and stop only the
	// links they made, never the patient's own.
	if p := req.Principal; p.Role != "" || (p.Proxy != nil && len(p.Proxy.Kinds) > 0) {
		s.refuseCaregiver(w, r, p.User, p.Patient)
		return nil, nil
	}
	return u, req
}

// showLinks lists the record's links, with every access, and the form to
// make one.
func (s *Server) showLinks(w http.ResponseWriter, r *http.Request) error {
	_, req := s.linkOwner(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	f.Values["days"] = "30"
	f.Extra["content-summary"] = true
	return s.renderLinks(w, r, req, f, nil, http.StatusOK)
}

func (s *Server) renderLinks(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, created *shl.Created, status int) error {
	by := ""
	if req.Principal.Caregiver {
		by = req.Principal.User // a caregiver sees only the links they made
	}
	links, err := s.opts.Links.List(r.Context(), req.Principal.Patient, by)
	if err != nil {
		return err
	}
	now := s.now()
	d := linksPage{form: f, Contents: shl.ContentNames, Created: created}
	for _, l := range links {
		c := linkCard{Link: l, State: "active"}
		switch {
		case !l.Revoked.IsZero():
			c.State = "revoked"
		case !l.Expires.IsZero() && !now.Before(l.Expires):
			c.State = "expired"
		case strings.Contains(l.Flags, "P") && l.AttemptsLeft <= 0:
			c.State = "locked"
		}
		d.Links = append(d.Links, c)
	}
	if created != nil {
		if d.QR, err = qrSVG(created.Viewer); err != nil {
			return err
		}
	}
	p := s.recordPage(w, r, "links.title", d)
	p.Status = status
	return s.render(w, r, "share_links", p)
}

// submitLink makes a link after a fresh second factor and shows it once,
// with its QR code.
func (s *Server) submitLink(w http.ResponseWriter, r *http.Request) error {
	if u := s.requireRecentAuth(w, r, s.stepUpAge()); u == nil {
		return nil
	}
	_, req := s.linkOwner(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	for _, k := range []string{"label", "days", "passcode"} {
		f.Values[k] = r.PostFormValue(k)
	}
	contents := r.PostForm["content"]
	for _, c := range contents {
		f.Extra["content-"+c] = true
	}
	days, err := strconv.Atoi(f.Values["days"])
	if err != nil || days < 1 || days > shl.MaxDays {
		f.Errors[""] = "links.invalid"
		f.Extra["Problem"] = "choose how long the link works"
		return s.renderLinks(w, r, req, f, nil, http.StatusUnprocessableEntity)
	}
	expires := s.now().AddDate(0, 0, days)
	created, err := s.opts.Links.Create(r.Context(), shl.New{Owner: req.Principal, Label: f.Values["label"], Contents: contents,
		Expires: expires, Passcode: f.Values["passcode"]})
	if apperr.CodeOf(err) == apperr.Invalid {
		f.Errors[""] = "links.invalid"
		f.Extra["Problem"] = apperr.MessageOf(err)
		f.Values["passcode"] = ""
		return s.renderLinks(w, r, req, f, nil, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	f = newForm()
	f.Values["days"] = "30"
	return s.renderLinks(w, r, req, f, created, http.StatusOK)
}

// submitRevokeLink ends a link of the record now.
func (s *Server) submitRevokeLink(w http.ResponseWriter, r *http.Request) error {
	_, req := s.linkOwner(w, r)
	if req == nil {
		return nil
	}
	if err := s.opts.Links.Revoke(r.Context(), r.PostFormValue("link"), req.Principal.Patient, req.Principal.User, clientAddr(r), req.Principal.Caregiver); err != nil {
		return err
	}
	to := "/sharing/links"
	if req.Principal.Caregiver {
		to += "?for=" + req.Principal.Patient
	}
	return redirect(w, r, to)
}

// shareCORS opens a recipient endpoint to any origin, without cookies.
func shareCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
}

// shareError answers a recipient endpoint's error as the spec has it.
func shareError(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// shareManifest answers POST {url}: the manifest, for a recipient who
// names themself (and gives the passcode, flag P).
func (s *Server) shareManifest(w http.ResponseWriter, r *http.Request) {
	shareCORS(w)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if s.opts.Links == nil {
		shareError(w, http.StatusNotFound, map[string]any{"error": "not found"})
		return
	}
	if l := s.opts.ShareLimiter; l != nil {
		if ok, wait := l.Allow(r.Context(), clientAddr(r)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			shareError(w, http.StatusTooManyRequests, map[string]any{"error": "too many requests from this address"})
			return
		}
	}
	var body struct {
		Recipient string `json:"recipient"`
		Passcode  string `json:"passcode"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		shareError(w, http.StatusBadRequest, map[string]any{"error": "the body must be JSON with recipient"})
		return
	}
	files, err := s.opts.Links.Manifest(r.Context(), r.PathValue("id"), body.Recipient, body.Passcode, clientAddr(r))
	var pe *shl.PasscodeError
	switch {
	case errors.As(err, &pe):
		shareError(w, http.StatusUnauthorized, map[string]any{"remainingAttempts": pe.Remaining})
	case errors.Is(err, shl.ErrBusy):
		w.Header().Set("Retry-After", "1")
		shareError(w, http.StatusTooManyRequests, map[string]any{"error": "busy: try again in a moment"})
	case errors.Is(err, shl.ErrRecipient):
		shareError(w, http.StatusBadRequest, map[string]any{"error": "recipient is required"})
	case errors.Is(err, shl.ErrNoLink):
		shareError(w, http.StatusNotFound, map[string]any{"error": "no such link, or it is no longer active"})
	case err != nil:
		s.log.ErrorContext(r.Context(), "share link manifest failed", "err", err)
		shareError(w, http.StatusInternalServerError, map[string]any{"error": "the link could not be read"})
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"files": files})
	}
}

// shareFile answers a file location once: the contents as compact JWE.
func (s *Server) shareFile(w http.ResponseWriter, r *http.Request) {
	shareCORS(w)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if s.opts.Links == nil {
		shareError(w, http.StatusNotFound, map[string]any{"error": "not found"})
		return
	}
	jwe, err := s.opts.Links.File(r.Context(), r.PathValue("id"), clientAddr(r))
	switch {
	case errors.Is(err, shl.ErrNoLink):
		shareError(w, http.StatusNotFound, map[string]any{"error": "no such file, or it was used or has expired"})
	case err != nil:
		s.log.ErrorContext(r.Context(), "share link file failed", "err", err)
		shareError(w, http.StatusInternalServerError, map[string]any{"error": "the file could not be made"})
	default:
		w.Header().Set("Content-Type", "application/jose")
		fmt.Fprint(w, jwe)
	}
}

// showShareViewer is carefront's viewer: it reads the link from the
// address's fragment (never sent to the server) and decrypts in the
// browser.
func (s *Server) showShareViewer(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, "share_viewer", s.newPage(w, r, "viewer.title"))
}

// qrSVG draws text as a QR code in SVG (dark modules as one path).
func qrSVG(text string) (template.HTML, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", err
	}
	n := code.Bounds().Dx()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="cf-qr" xmlns="http://www.w3.org/2000/svg" viewBox="-4 -4 %d %d" role="img" aria-labelledby="qr-title" shape-rendering="crispEdges"><title id="qr-title">QR code of the link</title><rect x="-4" y="-4" width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n+8, n+8, n+8, n+8)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil
}
