package notify

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestOutboxKeepsTheNewest(t *testing.T) {
	o := NewOutbox(3)
	for i := range 5 {
		o.Send(context.Background(), Message{To: "a@example.com", Subject: fmt.Sprint(i)})
	}
	var got []string
	for _, m := range o.Messages() {
		got = append(got, m.Subject)
		if m.Sent.IsZero() {
			t.Error("no send time")
		}
	}
	if strings.Join(got, ",") != "4,3,2" {
		t.Errorf("outbox = %v, want the three newest, newest first", got)
	}
}

func TestLogSMSLeavesNumberAndTextOut(t *testing.T) {
	var buf bytes.Buffer
	LogSMS{Log: slog.New(slog.NewJSONHandler(&buf, nil))}.SendSMS(context.Background(), "+15550100", "your code is 123456")
	if strings.Contains(buf.String(), "5550100") || strings.Contains(buf.String(), "123456") || buf.Len() == 0 {
		t.Errorf("log: %s", buf.String())
	}
}

func TestSMTPRefusesLineBreaksInHeaders(t *testing.T) {
	s := &SMTP{Addr: "127.0.0.1:1", From: "portal@clinic.example"}
	for _, m := range []Message{
		{To: "a@example.com\r\nBcc: b@example.com", Subject: "x", Text: "y"},
		{To: "a@example.com", Subject: "x\nBcc: b@example.com", Text: "y"},
	} {
		err := s.Send(context.Background(), m)
		if err == nil || !strings.Contains(err.Error(), "line break") {
			t.Errorf("%q / %q: %v, want the header refused before any connection", m.To, m.Subject, err)
		}
	}
}
