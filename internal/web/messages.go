package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/messaging"
)

// Secure messaging, the patient's side (/messages): the record's
// conversations with the care team, a new message to one of the pools
// offered, and a conversation with its answer form. A caregiver writes on
// the patient's behalf when their grant holds messages. Staff answer from
// their inbox.

type messagesPage struct {
	Threads []messaging.Thread
	// Draft is the person's unsent new message, if they saved one.
	Draft *messaging.Draft
	// Saved says a draft was just saved.
	Saved bool
}

type newMessagePage struct {
	*form
	Pools []messaging.Pool
}

type threadPage struct {
	*form
	Thread   *messaging.Thread
	Messages []messageView
	// Done is "sent" right after a message was sent.
	Done string
}

// messageView is a message as the thread page shows it.
type messageView struct {
	messaging.Message
	// From says who wrote it, in the page's language.
	From string
	// Ours is the patient's side (the patient or a caregiver).
	Ours bool
	// ReadState says to show whether the other side has read it: the team
	// (on the patient's pages, for the patient's side's messages) or the
	// patient's side (in the inbox, for the team's); Read and NotRead are
	// the catalogue ids that say so.
	ReadState     bool
	Read, NotRead string
	// Files link the files sent with it.
	Files []fileLink
}

// fileLink is a file of a message as a conversation page links it.
type fileLink struct {
	Name, Href, ContentType string
	Size                    int
}

// links are a message's files under the conversation's path.
func links(m messaging.Message, href func(id string) string) []fileLink {
	var out []fileLink
	for _, a := range m.Attachments {
		out = append(out, fileLink{Name: a.Name, Href: href(a.ID), ContentType: a.ContentType, Size: a.Size})
	}
	return out
}

// messageViews labels a thread's messages for the reader: their own ("You",
// "You, on NAME's behalf"), the patient's, a caregiver's, a staff member's
// by the name they signed with, or the team's automatic reply.
func messageViews(p page, th *messaging.Thread, account string, caregivers map[string]string, zone *time.Location) []messageView {
	name := ""
	if p.Viewing != nil && !p.Viewing.Self {
		name = p.Viewing.Name
	}
	out := make([]messageView, len(th.Messages))
	for i, m := range th.Messages {
		v := messageView{Message: m, Ours: m.AuthorKind == messaging.ByPatient || m.AuthorKind == messaging.ByCaregiver,
			Files: links(m, func(id string) string { return p.R("/messages/" + th.ID + "/files/" + id) })}
		v.ReadState, v.Read, v.NotRead = v.Ours, "messages.read", "messages.notread"
		v.Sent, v.ReadAt = v.Sent.In(zone), v.ReadAt.In(zone)
		switch {
		case m.AuthorKind == messaging.ByStaff:
			v.From = p.T("messages.from.staff", "Name", m.AuthorName, "Team", th.PoolName)
		case m.AuthorKind == messaging.ByCarefront:
			v.From = p.T("messages.from.auto", "Team", th.PoolName)
		case m.Author == account && m.AuthorKind == messaging.ByCaregiver:
			v.From = p.T("messages.from.you.behalf", "Name", name)
		case m.Author == account:
			v.From = p.T("messages.from.you")
		case m.AuthorKind == messaging.ByCaregiver && caregivers[m.Author] != "":
			v.From = p.T("messages.from.caregiver.named", "Name", caregivers[m.Author])
		case m.AuthorKind == messaging.ByCaregiver:
			v.From = p.T("messages.from.caregiver")
		case name != "":
			v.From = name
		default:
			v.From = p.T("messages.from.owner")
		}
		out[i] = v
	}
	return out
}

// caregiverLabels names the caregivers of a patient's record by account,
// as the patient invited them: by their email address. Ended grants count
// (their messages stay).
func (s *Server) caregiverLabels(ctx context.Context, patient string) (map[string]string, error) {
	if s.opts.Grants == nil {
		return nil, nil
	}
	gs, err := s.opts.Grants.List(ctx, patient)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range gs {
		if g.Account != "" {
			out[g.Account] = g.Email
		}
	}
	return out, nil
}

// FileKind names a file's type for people.
func (p page) FileKind(contentType string) string {
	switch contentType {
	case "application/pdf":
		return p.T("messages.file.pdf")
	case "image/jpeg", "image/png":
		return p.T("messages.file.photo")
	}
	return contentType
}

// FileSize writes a file's size in KB or MB.
func (p page) FileSize(n int) string {
	if n < 1<<20 {
		return p.T("messages.file.kb", "N", (n+1023)/1024)
	}
	return p.T("messages.file.mb", "N", fmt.Sprintf("%.1f", float64(n)/(1<<20)))
}

// Within writes a pool's response time in the page's language ("within 2
// days").
func (p page) Within(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d == 24*time.Hour:
		return p.T("messages.within.day")
	case d%(24*time.Hour) == 0:
		return p.T("messages.within.days", "N", int(d/(24*time.Hour)))
	case d%time.Hour == 0 && d == time.Hour:
		return p.T("messages.within.hour")
	case d%time.Hour == 0:
		return p.T("messages.within.hours", "N", int(d/time.Hour))
	default:
		return p.T("messages.within.minutes", "N", int(d/time.Minute))
	}
}

// messaging reports whether messages are served, answering 404 otherwise.
func (s *Server) messagesOn(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Messages == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "page not found"))
		return false
	}
	return true
}

// messagesPatient is s.patient for the messages pages; staff answer from
// their inbox, not here.
func (s *Server) messagesPatient(w http.ResponseWriter, r *http.Request) (*signedIn, *clinical.Request) {
	if !s.messagesOn(w, r) {
		return nil, nil
	}
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	if u.account.Kind == identity.Staff {
		s.renderError(w, r, apperr.New(apperr.Forbidden, "Staff answer messages from their inbox."))
		return nil, nil
	}
	return u, req
}

func (s *Server) showMessages(w http.ResponseWriter, r *http.Request) error {
	_, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	ths, err := s.opts.Messages.Threads(r.Context(), s.opts.Clinical, *req)
	if err != nil {
		return err
	}
	u := currentUser(r.Context())
	dr, err := s.opts.Messages.LoadDraft(r.Context(), u.account.ID, req.Principal.Patient, "")
	if err != nil {
		return err
	}
	return s.render(w, r, "messages", s.recordPage(w, r, "messages.title", messagesPage{Threads: ths, Draft: dr, Saved: r.FormValue("done") == "draft"}))
}

func (s *Server) showNewMessage(w http.ResponseWriter, r *http.Request) error {
	_, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	if ok, err := s.opts.Clinical.MayWrite(r.Context(), *req, "Communication"); err != nil || !ok {
		if err == nil {
			err = apperr.New(apperr.Forbidden, "You cannot send messages for this record.")
		}
		return err
	}
	f := newForm()
	f.Values["pool"] = r.FormValue("pool")
	u := currentUser(r.Context())
	dr, err := s.opts.Messages.LoadDraft(r.Context(), u.account.ID, req.Principal.Patient, "")
	if err != nil {
		return err
	}
	if dr != nil {
		f.Values["pool"], f.Values["subject"], f.Values["text"] = dr.Pool, dr.Subject, dr.Text
	}
	return s.showNewMessageForm(w, r, req, f, http.StatusOK)
}

func (s *Server) showNewMessageForm(w http.ResponseWriter, r *http.Request, req *clinical.Request, f *form, status int) error {
	pools, err := s.opts.Messages.PoolsFor(r.Context(), req.Principal.Patient, s.opts.Clinical.CaresFor)
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "messages.new.title", newMessagePage{form: f, Pools: pools})
	p.Status = status
	return s.render(w, r, "message_new", p)
}

func (s *Server) submitNewMessage(w http.ResponseWriter, r *http.Request) error {
	u, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	f, files, err := messageForm(r, "pool", "subject", "text")
	if err != nil {
		return err
	}
	if r.PostFormValue("action") == "draft" {
		dr := messaging.Draft{Pool: f.Values["pool"], Subject: f.Values["subject"], Text: f.Values["text"]}
		if err := s.opts.Messages.SaveDraft(r.Context(), s.opts.Clinical, *req, author(u, req), dr); inputErr(f, err) {
			return s.showNewMessageForm(w, r, req, f, http.StatusUnprocessableEntity)
		} else if err != nil {
			return err
		}
		p := s.recordPage(w, r, "messages.title", nil)
		return redirect(w, r, p.R("/messages?done=draft"))
	}
	if !s.sendAllowed(w, r, u, f) {
		return s.showNewMessageForm(w, r, req, f, http.StatusTooManyRequests)
	}
	pools, err := s.opts.Messages.PoolsFor(r.Context(), req.Principal.Patient, s.opts.Clinical.CaresFor)
	if err != nil {
		return err
	}
	th, err := s.opts.Messages.Start(r.Context(), s.opts.Clinical, *req, author(u, req), pools, f.Values["pool"], f.Values["subject"], f.Values["text"], files...)
	if inputErr(f, err) {
		return s.showNewMessageForm(w, r, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "messages.title", nil)
	return redirect(w, r, p.R("/messages/"+th.ID+"?done=sent"))
}

func (s *Server) showThread(w http.ResponseWriter, r *http.Request) error {
	u, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	dr, err := s.opts.Messages.LoadDraft(r.Context(), u.account.ID, req.Principal.Patient, r.PathValue("id"))
	if err != nil {
		return err
	}
	if dr != nil {
		f.Values["text"] = dr.Text
	}
	return s.showThreadForm(w, r, u, req, f, http.StatusOK)
}

func (s *Server) showThreadForm(w http.ResponseWriter, r *http.Request, u *signedIn, req *clinical.Request, f *form, status int) error {
	th, err := s.opts.Messages.Thread(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	done := ""
	if d := r.FormValue("done"); d == "sent" || d == "draft" {
		done = d
	}
	p := s.recordPage(w, r, "messages.thread.title", nil)
	var caregivers map[string]string
	if p.Viewing == nil || p.Viewing.Self {
		// The patient sees which of their caregivers wrote; a caregiver is
		// not shown the others' addresses.
		if caregivers, err = s.caregiverLabels(r.Context(), th.Patient); err != nil {
			return err
		}
	}
	p.Data = threadPage{form: f, Thread: th, Messages: messageViews(p, th, u.account.ID, caregivers, s.zone()), Done: done}
	p.Status = status
	return s.render(w, r, "message_thread", p)
}

func (s *Server) submitReply(w http.ResponseWriter, r *http.Request) error {
	u, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	f, files, err := messageForm(r, "text")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	p := s.recordPage(w, r, "messages.title", nil)
	if r.PostFormValue("action") == "draft" {
		err := s.opts.Messages.SaveDraft(r.Context(), s.opts.Clinical, *req, author(u, req), messaging.Draft{Thread: id, Text: f.Values["text"]})
		if inputErr(f, err) {
			return s.showThreadForm(w, r, u, req, f, http.StatusUnprocessableEntity)
		}
		if err != nil {
			return err
		}
		return redirect(w, r, p.R("/messages/"+id+"?done=draft"))
	}
	if !s.sendAllowed(w, r, u, f) {
		return s.showThreadForm(w, r, u, req, f, http.StatusTooManyRequests)
	}
	_, err = s.opts.Messages.Send(r.Context(), s.opts.Clinical, *req, author(u, req), id, f.Values["text"], files...)
	if inputErr(f, err) {
		return s.showThreadForm(w, r, u, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	return redirect(w, r, p.R("/messages/"+id+"?done=sent"))
}

// showFile sends a file of a conversation to someone who may read it, as
// a download the browser never runs.
func (s *Server) showFile(w http.ResponseWriter, r *http.Request) error {
	_, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	return s.sendFile(w, r, req)
}

func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, req *clinical.Request) error {
	a, err := s.opts.Messages.File(r.Context(), s.opts.Clinical, *req, r.PathValue("id"), r.PathValue("file"))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", a.ContentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Length", strconv.Itoa(len(a.Data)))
	_, err = w.Write(a.Data)
	return err
}

// messageForm reads a message form: the named fields and its file, if one
// was chosen.
func messageForm(r *http.Request, fields ...string) (*form, []messaging.Upload, error) {
	files, err := formFiles(r)
	if err != nil {
		return nil, nil, err
	}
	f := newForm()
	for _, k := range fields {
		f.Values[k] = r.PostFormValue(k)
	}
	return f, files, nil
}

// formFiles reads a message form's file, if one was chosen. The whole form
// is kept in memory (it is bounded by uploadLimit): no part of what a
// patient sends is written to a temporary file.
func formFiles(r *http.Request) ([]messaging.Upload, error) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return nil, nil
	}
	if err := r.ParseMultipartForm(uploadLimit); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, apperr.New(apperr.TooLarge, "The request is too large.")
		}
		return nil, apperr.New(apperr.Invalid, "the form could not be read")
	}
	var out []messaging.Upload
	for _, fh := range r.MultipartForm.File["attachment"] {
		if fh.Filename == "" && fh.Size == 0 {
			continue // the file field left empty
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(f, messaging.MaxAttachment+1))
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, messaging.Upload{Name: fh.Filename, Data: data})
	}
	return out, nil
}

// author is who writes from the patient's side: the patient, or a
// caregiver on their behalf.
func author(u *signedIn, req *clinical.Request) messaging.Author {
	kind := messaging.ByPatient
	if req.Principal.Caregiver || req.Principal.Proxy != nil {
		kind = messaging.ByCaregiver
	}
	return messaging.Author{Account: u.account.ID, Kind: kind}
}

// sendAllowed spends one of the account's messages (Options.MessageLimiter).
// When they are spent it puts a plain answer beside the text, which the
// form keeps, and reports false.
func (s *Server) sendAllowed(w http.ResponseWriter, r *http.Request, u *signedIn, f *form) bool {
	if s.opts.MessageLimiter == nil {
		return true
	}
	ok, wait := s.opts.MessageLimiter.Allow(r.Context(), "message:"+u.account.ID)
	if !ok {
		f.Errors["text"] = "messages.too-many"
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	}
	return ok
}

// inputErr puts input errors (apperr.FieldError, alone or joined) beside
// their fields, reporting whether there were any.
func inputErr(f *form, err error) bool {
	fields := apperr.Fields(err)
	for _, fe := range fields {
		f.Errors[fe.Field] = fe.Key
		if fe.Bound != "" {
			f.Extra["Bound:"+fe.Field] = fe.Bound
		}
	}
	return len(fields) > 0
}

// urlPattern finds web addresses in a message's text.
var urlPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

// messageText renders what a person wrote as plain text, with web
// addresses (http and https only) made links and nothing else: no markup a
// message holds is ever interpreted. Line breaks are kept by the page's
// style (white-space: pre-wrap).
func messageText(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range urlPattern.FindAllStringIndex(text, -1) {
		start, end := m[0], m[1]
		// A sentence's closing punctuation is not part of the address.
		for end > start && strings.ContainsRune(".,;:!?)]}", rune(text[end-1])) {
			end--
		}
		b.WriteString(html.EscapeString(text[last:start]))
		u := html.EscapeString(text[start:end])
		b.WriteString(`<a href="` + u + `" rel="noopener noreferrer nofollow">` + u + `</a>`)
		last = end
	}
	b.WriteString(html.EscapeString(text[last:]))
	return template.HTML(b.String()) //nolint:gosec // every piece is escaped above
}
