package audit

import (
	"bytes"
	"context"
	"testing"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// A refused trigger names a secret someone asked for; without an inventory
// snapshot the report must not list it as managed.
func TestReportDoesNotListARefusedTriggersSecret(t *testing.T) {
	c := clock.NewFake(t0)
	var buf bytes.Buffer
	w := NewWriter(c, nil, NewStreamSink(&buf))
	for _, e := range []events.Event{
		{Time: t0, Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Secret: "prod/pay", Cause: events.CauseManual},
		{Time: t0, Step: events.StepTrigger, Outcome: events.OutcomeRefused, Secret: "prod/no-such-secret", Cause: events.CauseManual,
			Error: `bad trigger: no managed secret is named "prod/no-such-secret"`},
	} {
		if err := w.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := ReadRecords(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rep := BuildReport(ReportInput{From: t0.Add(-1), To: t0.Add(1), Now: t0, Records: recs})
	var names []string
	for _, s := range rep.Secrets {
		names = append(names, s.Name)
	}
	if len(names) != 1 || names[0] != "prod/pay" {
		t.Errorf("report lists %v as managed, want only prod/pay", names)
	}
}
