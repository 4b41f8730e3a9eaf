package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"latchkey/store"
)

type fakeStats struct {
	st  *store.OpsStats
	err error
}

func (f fakeStats) OpsStats(context.Context) (*store.OpsStats, error) { return f.st, f.err }

func scrapeText(t *testing.T, o Options) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(o).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String())); err != nil {
		t.Fatalf("not the text format: %v", err)
	}
	return rec.Body.String()
}

func TestStoreCollector(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	body := scrapeText(t, Options{Log: quiet, Stats: fakeStats{st: &store.OpsStats{EventsWritten: 42, Queues: []store.QueueStat{
		{Channel: "email", State: "queued", Count: 2, Oldest: time.Now().Add(-90 * time.Second)},
		{Channel: "webhook", State: "failed", Count: 0},
	}}}})
	for _, want := range []string{
		`latchkey_events_written_total 42`,
		`latchkey_outbox_messages{channel="email",state="queued"} 2`,
		`latchkey_outbox_messages{channel="webhook",state="failed"} 0`,
		`latchkey_outbox_oldest_age_seconds{channel="webhook",state="failed"} 0`,
		`latchkey_store_scrape_error 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	if !strings.Contains(body, `latchkey_outbox_oldest_age_seconds{channel="email",state="queued"} 9`) {
		t.Errorf("email age is not about 90 s:\n%s", body)
	}
	// A failing store read is a series, not a failed scrape.
	body = scrapeText(t, Options{Log: quiet, Stats: fakeStats{err: errors.New("disk on fire")}})
	if !strings.Contains(body, "latchkey_store_scrape_error 1") || strings.Contains(body, "latchkey_outbox_messages{") {
		t.Errorf("failing store:\n%s", body)
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Error("no Go runtime series")
	}
}

func TestRecorders(t *testing.T) {
	ObserveHTTP("GET", "/metrics-test/:id", 204, 30*time.Millisecond)
	SignIn(SignInShed)
	SetSignInQueue(7)
	WebhookAttempt(false)
	body := scrapeText(t, Options{})
	for _, want := range []string{
		`latchkey_http_request_duration_seconds_bucket{method="GET",route="/metrics-test/:id",status="204",le="0.05"} 1`,
		`latchkey_http_request_duration_seconds_bucket{method="GET",route="/metrics-test/:id",status="204",le="0.025"} 0`,
		`latchkey_sign_ins_total{outcome="shed"} 1`,
		`latchkey_sign_ins_total{outcome="ok"} 0`,
		`latchkey_sign_in_queue_length 7`,
		`latchkey_webhook_attempts_total{result="error"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	SetSignInQueue(0)
}
