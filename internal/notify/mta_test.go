package notify_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"carefront/internal/notify"
)

// The SMTP sender against a production mail server (Postfix, which
// .ci/run installs and starts): STARTTLS with a certificate checked
// against the given CA, then local delivery to a mailbox file, read back
// and parsed as a mail reader would.
//
//	CAREFRONT_TEST_SMTP          host:port, e.g. localhost:25
//	CAREFRONT_TEST_SMTP_CA       PEM file of the server's certificate
//	CAREFRONT_TEST_SMTP_TO       a local recipient, e.g. cfmail@localhost
//	CAREFRONT_TEST_SMTP_MAILBOX  that recipient's mailbox file
func TestDeliveryThroughAProductionMTA(t *testing.T) {
	addr := os.Getenv("CAREFRONT_TEST_SMTP")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CAREFRONT_TEST_SMTP is not set on CI; .ci/run starts Postfix for this test")
		}
		t.Skip("set CAREFRONT_TEST_SMTP (and _CA, _TO, _MAILBOX) to test delivery through a mail server")
	}
	pem, err := os.ReadFile(os.Getenv("CAREFRONT_TEST_SMTP_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in CAREFRONT_TEST_SMTP_CA")
	}
	to, mailbox := os.Getenv("CAREFRONT_TEST_SMTP_TO"), os.Getenv("CAREFRONT_TEST_SMTP_MAILBOX")
	var b [8]byte
	rand.Read(b[:])
	marker := hex.EncodeToString(b[:])
	text := "Su código de carefront es 123456.\nIt works once.\n. a line that starts with a dot\n" + marker

	s := &notify.SMTP{Addr: addr, From: "carefront@localhost", RootCAs: pool}
	if err := s.Send(context.Background(), notify.Message{To: to, Subject: "Su código / your code " + marker, Text: text}); err != nil {
		t.Fatalf("send: %v", err)
	}

	// Postfix delivers in the background: wait for the message. The mbox
	// may hold earlier runs' messages too: take the one with the marker,
	// from its "From " separator line on.
	var raw string
	for deadline := time.Now().Add(30 * time.Second); raw == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		box, _ := os.ReadFile(mailbox)
		at := strings.LastIndex(string(box), "Subject: ")
		if at < 0 || !strings.Contains(string(box[at:]), marker) {
			continue
		}
		start := strings.LastIndex(string(box[:at]), "\nFrom ") + 1 // 0 when it is the first message
		raw = string(box[start:])
		raw = raw[strings.Index(raw, "\n")+1:] // past the separator line
	}
	if raw == "" {
		t.Fatalf("the message did not arrive in %s within 30 s", mailbox)
	}
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("the delivered message does not parse: %v", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "Su código / your code "+marker {
		t.Errorf("subject %q (%v)", subject, err)
	}
	if msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" {
		t.Errorf("missing Date or Message-ID: %v", msg.Header)
	}
	// RFC 3848: "ESMTPS" (here "UTF8SMTPS") in Received means it came over TLS.
	if r := msg.Header.Get("Received"); !strings.Contains(r, "SMTPS ") {
		t.Errorf("the Received header does not show TLS: %q", r)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimRight(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n")
	// An mbox escapes body lines starting "From "; none here, so the text
	// comes back exactly, accents and the leading dot included.
	if got != text {
		t.Errorf("body:\n%q\nwant\n%q", got, text)
	}
}
