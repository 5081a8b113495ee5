package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

func TestRefusalSummaryIsBounded(t *testing.T) {
	huge := "/v1/triggers/" + strings.Repeat("é", 250_000) + "\x1b[2J\n"
	ev := RefusalSummary{Door: events.SourceHTTP, Source: "203.0.113.0/24", Reason: "bad_token", Count: 10_000,
		From: t0, To: t0.Add(time.Minute), Example: huge}.Event()
	var buf bytes.Buffer
	w := NewWriter(clock.NewFake(t0), nil, NewStreamSink(&buf))
	require.NoError(t, w.Append(context.Background(), ev))
	assert.Less(t, buf.Len(), 1024, "one summary of 10,000 refusals with a 500 KB path stays under 1 KB")
	assert.NotContains(t, buf.String(), "\\u001b", "control characters are replaced")
	recs, err := ReadRecords(&buf)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	d := recs[0].Event.Details
	assert.Equal(t, "10000", d["count"])
	assert.Equal(t, "203.0.113.0/24", d["source"])
	assert.Equal(t, events.StepAuth, recs[0].Event.Step)
	assert.Equal(t, events.OutcomeRefused, recs[0].Event.Outcome)
	assert.True(t, strings.HasSuffix(d["example"], "…"))
}
