package terminal

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/notify"
)

func TestNotifyPrintsOneLinePerNotification(t *testing.T) {
	leaked := secret.New("lc_test_sk_TERMINALsecret9999")
	var out bytes.Buffer
	term := New(&out)
	e := events.Event{
		Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Step: events.StepRotation, Outcome: events.OutcomeFailed,
		Severity: events.SeverityCritical, Secret: "prod/pay", Environment: "production", KeyID: "key_abcdef1234",
		Cause: events.CauseCompromise, Actor: "U0SEC", Source: events.SourceSlack, Duration: 1500 * time.Millisecond,
		Error: fmt.Sprintf("create failed\nfor %v", leaked),
	}
	retry, err := term.Notify(context.Background(), notify.FromEvent(e))
	require.NoError(t, err)
	assert.False(t, retry)
	line := out.String()
	assert.Equal(t, 1, strings.Count(line, "\n"), line)
	assert.True(t, strings.HasPrefix(line, "2026-03-01T12:00:00Z CRITICAL Compromise rotation failed: prod/pay env=production key=…1234 cause=compromise by=U0SEC via=slack took=1.5s"), line)
	assert.Contains(t, line, `error="create failed for [REDACTED]"`)
	assert.NotContains(t, line, leaked.Reveal())
	assert.NotContains(t, line, "key_abcdef1234")
}

func TestNotifyPrintsDigestItems(t *testing.T) {
	var out bytes.Buffer
	items := []notify.Notification{{Title: "Rotation succeeded: a"}, {Title: "Rotation succeeded: b"}}
	_, err := New(&out).Notify(context.Background(), notify.Notification{Title: "Digest: 2 routine updates", Digest: items})
	require.NoError(t, err)
	assert.Equal(t, "INFO     Digest: 2 routine updates\n    INFO     Rotation succeeded: a\n    INFO     Rotation succeeded: b\n", out.String())
}
