package web

import (
	"errors"
	"html"
	"html/template"
	"net/http"
	"regexp"
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
	// Ours is the patient's side (the patient or a caregiver): the page
	// says whether the team has read it.
	Ours bool
}

// messageViews labels a thread's messages for the reader: their own ("You",
// "You, on NAME's behalf"), the patient's, a caregiver's, a staff member's
// by the name they signed with, or the team's automatic reply.
func messageViews(p page, th *messaging.Thread, account string) []messageView {
	name := ""
	if p.Viewing != nil && !p.Viewing.Self {
		name = p.Viewing.Name
	}
	out := make([]messageView, len(th.Messages))
	for i, m := range th.Messages {
		v := messageView{Message: m, Ours: m.AuthorKind == messaging.ByPatient || m.AuthorKind == messaging.ByCaregiver}
		switch {
		case m.AuthorKind == messaging.ByStaff:
			v.From = p.T("messages.from.staff", "Name", m.AuthorName, "Team", th.PoolName)
		case m.AuthorKind == messaging.ByCarefront:
			v.From = p.T("messages.from.auto", "Team", th.PoolName)
		case m.Author == account && m.AuthorKind == messaging.ByCaregiver:
			v.From = p.T("messages.from.you.behalf", "Name", name)
		case m.Author == account:
			v.From = p.T("messages.from.you")
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
	return s.render(w, r, "messages", s.recordPage(w, r, "messages.title", messagesPage{Threads: ths}))
}

func (s *Server) showNewMessage(w http.ResponseWriter, r *http.Request) error {
	_, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	if ok, err := s.opts.Messages.MayWrite(r.Context(), s.opts.Clinical, *req); err != nil || !ok {
		if err == nil {
			err = apperr.New(apperr.Forbidden, "You cannot send messages for this record.")
		}
		return err
	}
	f := newForm()
	f.Values["pool"] = r.FormValue("pool")
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
	f := newForm()
	for _, k := range []string{"pool", "subject", "text"} {
		f.Values[k] = r.PostFormValue(k)
	}
	pools, err := s.opts.Messages.PoolsFor(r.Context(), req.Principal.Patient, s.opts.Clinical.CaresFor)
	if err != nil {
		return err
	}
	th, err := s.opts.Messages.Start(r.Context(), s.opts.Clinical, *req, author(u, req), pools, f.Values["pool"], f.Values["subject"], f.Values["text"])
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
	return s.showThreadForm(w, r, u, req, newForm(), http.StatusOK)
}

func (s *Server) showThreadForm(w http.ResponseWriter, r *http.Request, u *signedIn, req *clinical.Request, f *form, status int) error {
	th, err := s.opts.Messages.Thread(r.Context(), s.opts.Clinical, *req, r.PathValue("id"))
	if err != nil {
		return err
	}
	done := ""
	if r.FormValue("done") == "sent" {
		done = "sent"
	}
	p := s.recordPage(w, r, "messages.thread.title", nil)
	p.Data = threadPage{form: f, Thread: th, Messages: messageViews(p, th, u.account.ID), Done: done}
	p.Status = status
	return s.render(w, r, "message_thread", p)
}

func (s *Server) submitReply(w http.ResponseWriter, r *http.Request) error {
	u, req := s.messagesPatient(w, r)
	if req == nil {
		return nil
	}
	f := newForm()
	f.Values["text"] = r.PostFormValue("text")
	id := r.PathValue("id")
	_, err := s.opts.Messages.Send(r.Context(), s.opts.Clinical, *req, author(u, req), id, f.Values["text"])
	if inputErr(f, err) {
		return s.showThreadForm(w, r, u, req, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	p := s.recordPage(w, r, "messages.title", nil)
	return redirect(w, r, p.R("/messages/"+id+"?done=sent"))
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

// inputErr puts messaging's input errors beside their fields, reporting
// whether there were any.
func inputErr(f *form, err error) bool {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	found := false
	for _, e := range errs {
		var ie *messaging.InputError
		if errors.As(e, &ie) {
			f.Errors[ie.Field], found = "messages."+ie.Code, true
		}
	}
	return found
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
