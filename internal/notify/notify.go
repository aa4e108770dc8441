// Package notify sends carefront's messages to people: one-time sign-in
// codes and security notices (new sign-in, password changed, factor added
// or removed, recovery code used, account locked). Messages never carry
// PHI: no names of conditions, results, clinicians or visits.
//
// Email goes through SMTP when configured; otherwise into an in-memory
// development outbox that demo mode shows at /dev/outbox. SMS has an
// interface and a logging implementation only.
package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
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
	return nil
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
		return err
	}
	if err := c.Rcpt(m.To); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	body := "From: " + s.From + "\r\nTo: " + m.To + "\r\nSubject: " + m.Subject +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(m.Text, "\n", "\r\n")
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// SMSSender delivers text messages.
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// LogSMS records that a text message would have been sent, without the
// number or the text.
type LogSMS struct{ Log *slog.Logger }

// SendSMS logs the attempt.
func (l LogSMS) SendSMS(ctx context.Context, _, _ string) error {
	l.Log.InfoContext(ctx, "sms not sent: no SMS provider is configured")
	return nil
}
