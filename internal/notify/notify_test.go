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
