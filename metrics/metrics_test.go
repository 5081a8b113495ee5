package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestRotationEventsBecomeCounters(t *testing.T) {
	m := metrics.New(metrics.WithSecretLabels(10))
	ctx := context.Background()
	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	for _, e := range []events.Event{
		{Time: at, Step: events.StepRotation, Outcome: events.OutcomeStarted, Cause: events.CauseManual, Secret: "app/a"},
		{Time: at, Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Cause: events.CauseManual, Secret: "app/a", Environment: "sandbox", Duration: 2 * time.Second},
		{Time: at, Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Cause: events.CauseManual, Secret: "app/b", Environment: "sandbox"},
		{Time: at, Step: events.StepRotation, Outcome: events.OutcomeFailed, Cause: events.CauseCompromise, Secret: "app/c"},
		{Time: at, Step: events.StepCreate, Outcome: events.OutcomeFailed, Environment: "production", Secret: "app/c"},
		{Time: at, Step: events.StepTrigger, Outcome: events.OutcomeRefused, Source: events.SourceHTTP},
		{Time: at, Step: events.StepAlert, Outcome: events.OutcomeWarning, Details: map[string]string{"reason": "current_key_revoked"}},
	} {
		m.Emit(ctx, e)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`lakirotator_rotations_total{cause="manual",result="succeeded"} 2`,
		`lakirotator_rotations_total{cause="compromise",result="failed"} 1`,
		`lakirotator_last_success_timestamp_seconds{secret="app/a"} ` + "1.7803044e+09",
		`lakirotator_step_failures_total{environment="production",step="create"} 1`,
		`lakirotator_triggers_total{outcome="refused",source="http"} 1`,
		`lakirotator_alerts_total{reason="current_key_revoked"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// A started rotation is not a finished one.
	if strings.Contains(out, `result="started"`) {
		t.Error("a started rotation was counted as a result")
	}
}

func TestProviderCallsAndAges(t *testing.T) {
	m := metrics.New(metrics.WithSecretLabels(10))
	m.ObserveCall("lakiconnect", "POST /api_keys", "201")
	m.ObserveCall("lakiconnect", "POST /api_keys", "201")
	m.SetSecretAge("app/a", "sandbox", 90*time.Minute)
	out := scrape(t, m)
	for _, want := range []string{
		`lakirotator_provider_calls_total{operation="POST /api_keys",provider="lakiconnect",status="201"} 2`,
		`lakirotator_secret_age_seconds{environment="sandbox",secret="app/a"} 5400`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Per-secret series name every managed secret: off unless asked for, and
// bounded when on.
func TestPerSecretSeriesAreOptInAndBounded(t *testing.T) {
	ctx := context.Background()
	succeed := func(m *metrics.Metrics, name string) {
		m.Emit(ctx, events.Event{Time: time.Now(), Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Cause: events.CauseManual, Secret: name, Environment: "sandbox"})
	}
	off := metrics.New()
	succeed(off, "app/a")
	off.SetSecretAge("app/a", "sandbox", time.Hour)
	if out := scrape(t, off); strings.Contains(out, "app/a") {
		t.Errorf("per-secret series without opting in:\n%s", grepSeries(out, "app/a"))
	}
	on := metrics.New(metrics.WithSecretLabels(2))
	for _, n := range []string{"app/a", "app/b", "app/c", "app/d"} {
		succeed(on, n)
		on.SetSecretAge(n, "sandbox", time.Hour)
	}
	out := scrape(t, on)
	for _, n := range []string{"app/a", "app/b"} {
		if !strings.Contains(out, `secret="`+n+`"`) {
			t.Errorf("no series for %s within the bound", n)
		}
	}
	for _, n := range []string{"app/c", "app/d"} {
		if strings.Contains(out, `secret="`+n+`"`) {
			t.Errorf("series for %s past the bound of 2", n)
		}
	}
}

func grepSeries(out, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
