package notify

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// smtpPeer is a small SMTP server speaking the protocol for real over TCP,
// with STARTTLS and AUTH PLAIN, that records what it was sent.
type smtpPeer struct {
	ln       net.Listener
	tls      *tls.Config
	startTLS bool
	rejectTo bool // answer RCPT as servers do for an unknown mailbox
	mu       sync.Mutex
	got      []string // commands and data, as the server saw them
}

func newSMTPPeer(t *testing.T, offerStartTLS bool) (*smtpPeer, *x509.CertPool) {
	t.Helper()
	// httptest's certificate is for 127.0.0.1 and example.com.
	ts := httptest.NewTLSServer(nil)
	cert := ts.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &smtpPeer{ln: ln, tls: &tls.Config{Certificates: []tls.Certificate{cert}}, startTLS: offerStartTLS}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p, pool
}

func (p *smtpPeer) record(s string) {
	p.mu.Lock()
	p.got = append(p.got, s)
	p.mu.Unlock()
}

func (p *smtpPeer) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.session(c)
	}
}

func (p *smtpPeer) session(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	say("220 mail.test ESMTP")
	secure := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch cmd {
		case "EHLO", "HELO":
			if p.startTLS && !secure {
				say("250-mail.test\r\n250 STARTTLS")
			} else {
				say("250-mail.test\r\n250 AUTH PLAIN")
			}
		case "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, p.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
			p.record("TLS")
		case "AUTH":
			p.record(line)
			say("235 ok")
		case "MAIL", "RCPT":
			p.record(line)
			if cmd == "RCPT" && p.rejectTo {
				say("550 5.1.1 " + strings.TrimPrefix(line, "RCPT TO:") + ": Recipient address rejected: User unknown")
				continue
			}
			say("250 ok")
		case "DATA":
			say("354 go on")
			var body strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				body.WriteString(l)
			}
			p.record(body.String())
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 no")
		}
	}
}

func TestSMTPSendsOverSTARTTLS(t *testing.T) {
	p, pool := newSMTPPeer(t, true)
	s := &SMTP{Addr: p.ln.Addr().String(), From: "portal@clinic.example", Username: "portal", Password: "secret", RootCAs: pool}
	err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Your carefront sign-in code", Text: "Your code is 123456.\nIt works once."})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	all := strings.Join(p.got, "\n")
	if len(p.got) == 0 || p.got[0] != "TLS" {
		t.Fatalf("the conversation did not start with STARTTLS: %q", p.got)
	}
	for _, want := range []string{"AUTH PLAIN", "MAIL FROM:<portal@clinic.example>", "RCPT TO:<ana@example.com>",
		"Subject: Your carefront sign-in code", "Content-Type: text/plain; charset=utf-8", "Your code is 123456.\r\nIt works once."} {
		if !strings.Contains(all, want) {
			t.Errorf("the server did not get %q in:\n%s", want, all)
		}
	}
}

func TestSMTPRefusesAServerWithoutSTARTTLS(t *testing.T) {
	p, pool := newSMTPPeer(t, false)
	s := &SMTP{Addr: p.ln.Addr().String(), From: "portal@clinic.example", Username: "portal", Password: "secret", RootCAs: pool}
	err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "x", Text: "y"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err = %v, want a refusal to talk without TLS", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.got {
		if strings.HasPrefix(g, "AUTH") {
			t.Fatal("credentials were sent without TLS")
		}
	}
}

// A server's refusal often repeats the address; the error carefront logs
// keeps the reply code only.
func TestSMTPErrorsLeaveTheAddressOut(t *testing.T) {
	p, pool := newSMTPPeer(t, true)
	p.rejectTo = true
	s := &SMTP{Addr: p.ln.Addr().String(), From: "portal@clinic.example", RootCAs: pool}
	err := s.Send(context.Background(), Message{To: "ana.rivera@example.com", Subject: "x", Text: "y"})
	if err == nil || !strings.Contains(err.Error(), "550") || strings.Contains(err.Error(), "ana.rivera") {
		t.Fatalf("err = %v, want the reply code without the address", err)
	}
}
