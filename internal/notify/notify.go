// Package notify sends carefront's messages to people: one-time sign-in
// codes and security notices (new sign-in, password changed, factor added
// or removed, recovery code used, account locked). Messages never carry
// PHI: no names of conditions, results, clinicians or visits.
//
// Email goes through SMTP when configured; otherwise into an in-memory
// development outbox that demo mode shows at /dev/outbox. SMS has an
// interface and a logging implementation only (a provider plugs in
// later); the outbox keeps text messages too.
//
// For tests, CAREFRONT_TEST_OUTBOX_DIR names a directory where every
// notification any sender here delivers is also written, one file each,
// so that a last step of make test can scan all of them for PHI
// (tools/outboxscan).
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"
)

// Message is one email.
type Message struct {
	To      string
	Subject string
	Text    string
	Sent    time.Time
	// MessageID, when set, is the local part of the Message-ID header: a
	// message sent again (a retried job) keeps its id, so mail clients
	// show it once. Hex digits only; empty makes a random one.
	MessageID string
}

// Sender delivers email.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Outbox keeps the last messages in memory instead of sending them, for
// development and demonstrations.
type Outbox struct {
	mu   sync.Mutex
	msgs []Message
	max  int
}

// NewOutbox keeps up to max messages.
func NewOutbox(max int) *Outbox { return &Outbox{max: max} }

// Send stores the message.
func (o *Outbox) Send(_ context.Context, m Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.Sent.IsZero() {
		m.Sent = time.Now().UTC()
	}
	o.msgs = append(o.msgs, m)
	if len(o.msgs) > o.max {
		o.msgs = o.msgs[len(o.msgs)-o.max:]
	}
	keep("email", m.Subject, m.Text)
	return nil
}

// SendSMS stores a text message, with the subject "Text message".
func (o *Outbox) SendSMS(ctx context.Context, to, text string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, Message{To: to, Subject: "Text message", Text: text, Sent: time.Now().UTC()})
	if len(o.msgs) > o.max {
		o.msgs = o.msgs[len(o.msgs)-o.max:]
	}
	keep("sms", "", text)
	return nil
}

// TestOutboxDir is the environment variable naming the directory where
// tests keep a copy of every notification (keep).
const TestOutboxDir = "CAREFRONT_TEST_OUTBOX_DIR"

var testOutbox = os.Getenv(TestOutboxDir)

// Probe keeps, in the test outbox directory, a text that must never
// appear in a notification (what a person wrote in a message), for the
// scan to look for. It does nothing outside tests.
func Probe(text string) {
	if text != "" {
		keep("probe", "", text)
	}
}

// keep writes a copy of a notification to the test outbox directory, when
// there is one. Only subject and text are kept: what is scanned for PHI.
// A copy that cannot be written fails loudly, so a scan never passes for
// want of files.
func keep(channel, subject, text string) {
	if testOutbox == "" {
		return
	}
	f, err := os.CreateTemp(testOutbox, channel+"-*.txt")
	if err == nil {
		_, err = f.WriteString(subject + "\n\n" + text + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		panic(fmt.Sprintf("notify: %s is set but a copy cannot be written: %v", TestOutboxDir, err))
	}
}

// Await returns the stored messages, newest first, once there are at
// least n, or what there is when ctx ends. Mail arrives from the job
// queue, a moment after the request that caused it.
func (o *Outbox) Await(ctx context.Context, n int) []Message {
	for {
		if msgs := o.Messages(); len(msgs) >= n || ctx.Err() != nil {
			return msgs
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Messages returns the stored messages, newest first.
func (o *Outbox) Messages() []Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Message, len(o.msgs))
	for i, m := range o.msgs {
		out[len(o.msgs)-1-i] = m
	}
	return out
}

// SMTP sends email through a server that speaks STARTTLS (or implicit TLS
// on port 465). It refuses to send credentials without TLS.
type SMTP struct {
	Addr     string // host:port
	From     string
	Username string
	Password string
	// RootCAs verifies the server's certificate; nil uses the system's.
	RootCAs *x509.CertPool
}

// Send delivers one message.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := compose(s.From, m, time.Now())
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("smtp address: %w", err)
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: s.RootCAs}
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	if port == "465" {
		conn, err = tls.DialWithDialer(&d, "tcp", s.Addr, tc)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.Addr)
	}
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if port != "465" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("smtp: the server does not offer STARTTLS")
		}
		if err := c.StartTLS(tc); err != nil {
			return err
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.From); err != nil {
		return replyErr("MAIL", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return replyErr("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return replyErr("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return replyErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return replyErr("DATA", err)
	}
	keep("email", m.Subject, m.Text)
	return c.Quit()
}

// replyErr keeps a mail server's reply code and drops its text, which
// often repeats the recipient's address: errors end up in logs.
func replyErr(cmd string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Errorf("smtp %s: the server answered %d", cmd, te.Code)
	}
	return fmt.Errorf("smtp %s: %w", cmd, err)
}

// compose writes a message as RFC 5322 wants it, so that relays which
// check (and spam filters) accept it: a Date and Message-ID, the subject
// encoded per RFC 2047, the text as quoted-printable UTF-8 (no 8-bit
// transport needed), CRLF line ends. A header value with a line break is
// refused rather than sent (header injection).
func compose(from string, m Message, now time.Time) ([]byte, error) {
	for _, v := range []string{from, m.To, m.Subject} {
		if strings.ContainsAny(v, "\r\n") {
			return nil, errors.New("smtp: a header value holds a line break")
		}
	}
	domain := "localhost"
	if at := strings.LastIndex(from, "@"); at >= 0 {
		domain = from[at+1:]
	}
	id := m.MessageID
	if id == "" || strings.Trim(id, "0123456789abcdef") != "" || len(id) > 64 {
		var r [12]byte
		rand.Read(r[:])
		id = hex.EncodeToString(r[:])
	}
	var b bytes.Buffer
	b.WriteString("From: " + from + "\r\nTo: " + m.To + "\r\n")
	b.WriteString("Subject: " + mime.QEncoding.Encode("utf-8", m.Subject) + "\r\n")
	b.WriteString("Date: " + now.Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: <" + id + "@" + domain + ">\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(m.Text, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// SMSSender delivers text messages.
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// LogSMS records that a text message would have been sent, without the
// number or the text.
type LogSMS struct{ Log *slog.Logger }

// SendSMS logs the attempt.
func (l LogSMS) SendSMS(ctx context.Context, _, text string) error {
	l.Log.InfoContext(ctx, "sms not sent: no SMS provider is configured")
	keep("sms", "", text)
	return nil
}
