package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

var reportSecret = secret.New("lc_live_sk_REPORTsecretvalue5151")

// scenario writes a month of audit records through the real writer and reads them back.
func scenario(t *testing.T) ([]Record, []SecretState, time.Time) {
	t.Helper()
	c := clock.NewFake(t0)
	var buf bytes.Buffer
	w := NewWriter(c, nil, NewStreamSink(&buf))
	emit := func(at time.Time, e events.Event) {
		e.Time = at
		require.NoError(t, w.Append(context.Background(), e))
	}
	day := 24 * time.Hour
	emit(t0, events.Event{Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Secret: "prod/pay", Cause: events.CauseScheduled, KeyID: "key_pay_old_1111"})
	emit(t0.Add(2*day), events.Event{Step: events.StepViolation, Outcome: events.OutcomeFailed, Secret: "prod/legacy", Reason: "key older than 90d", Details: map[string]string{"reason": "max_age_exceeded"}})
	emit(t0.Add(3*day), events.Event{Step: events.StepViolation, Outcome: events.OutcomeFailed, Secret: "prod/pay", Details: map[string]string{"reason": "extra_scopes"}})
	trig := "slack-emg1"
	emer := events.Event{Cause: events.CauseCompromise, TriggerID: trig, Actor: "U0SEC", Source: events.SourceSlack, Reason: "key pasted in chat"}
	e := emer
	e.Step, e.Outcome = events.StepTrigger, events.OutcomeSucceeded
	emit(t0.Add(10*day), e)
	e.Step, e.Secret, e.KeyID = events.StepCreate, "prod/pay", "key_pay_new_2222"
	emit(t0.Add(10*day+time.Minute), e)
	e.Step, e.Outcome, e.Error = events.StepTest, events.OutcomeFailed, fmt.Sprintf("whoami with %v: 401", reportSecret)
	emit(t0.Add(10*day+2*time.Minute), e)
	e.Step, e.Outcome, e.Error = events.StepRotation, events.OutcomeSucceeded, ""
	emit(t0.Add(10*day+5*time.Minute), e)
	// An emergency before the period, and a record after it.
	emit(t0.Add(-20*day), events.Event{Step: events.StepTrigger, Outcome: events.OutcomeSucceeded, Cause: events.CausePersonnel, TriggerID: "old"})
	emit(t0.Add(40*day), events.Event{Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Secret: "prod/legacy", Cause: events.CauseManual})

	recs, err := ReadRecords(&buf)
	require.NoError(t, err)
	now := t0.Add(30 * day)
	inv := []SecretState{
		{Name: "prod/pay", Kind: "api_key", Environment: "production", MasterMerchantID: "mm_42", KeyID: "key_pay_new_2222",
			Scopes: []string{"payments:write", "payments:read"}, PolicyScopes: []string{"payments:read", "payments:write"},
			PolicyMaxAge: 90 * day, CreatedAt: t0.Add(10 * day), NextDue: t0.Add(100 * day)},
		{Name: "prod/legacy", Kind: "api_key", Environment: "production", MasterMerchantID: "mm_42", KeyID: "key_legacy_3333",
			Scopes: []string{"payments:read", "refunds:write"}, PolicyScopes: []string{"payments:read", "reports:read"},
			PolicyMaxAge: 90 * day, CreatedAt: now.Add(-120 * day), NextDue: now.Add(-30 * day)},
	}
	return recs, inv, now
}

func TestBuildReport(t *testing.T) {
	recs, inv, now := scenario(t)
	rep := BuildReport(ReportInput{From: t0, To: now, Now: now, Records: recs, Inventory: inv})

	require.Len(t, rep.Secrets, 2)
	legacy, pay := rep.Secrets[0], rep.Secrets[1]
	assert.Equal(t, "prod/legacy", legacy.Name)
	assert.Equal(t, "…3333", legacy.Key)
	assert.True(t, legacy.Overdue())
	assert.Equal(t, []string{"refunds:write"}, legacy.ExtraScopes)
	assert.Equal(t, []string{"reports:read"}, legacy.MissingScopes)
	assert.True(t, legacy.LastRotation.IsZero(), "the rotation after the period does not count")

	assert.Equal(t, "…2222", pay.Key)
	assert.True(t, pay.ScopesOK())
	assert.False(t, pay.Overdue())
	assert.Equal(t, 20*24*time.Hour, pay.Age)
	assert.Equal(t, t0.Add(10*24*time.Hour+5*time.Minute), pay.LastRotation)
	assert.Equal(t, events.CauseCompromise, pay.LastCause)

	require.Len(t, rep.Emergencies, 1, "only emergencies that started in the period")
	em := rep.Emergencies[0]
	assert.Equal(t, "slack-emg1", em.TriggerID)
	assert.Equal(t, "U0SEC", em.Actor)
	assert.Equal(t, "key pasted in chat", em.Reason)
	require.Len(t, em.Timeline, 4)
	assert.Equal(t, []events.Step{events.StepTrigger, events.StepCreate, events.StepTest, events.StepRotation},
		[]events.Step{em.Timeline[0].Step, em.Timeline[1].Step, em.Timeline[2].Step, em.Timeline[3].Step})
	assert.Equal(t, 5*time.Minute, em.End.Sub(em.Start))

	// The prod/pay violation was closed by the emergency rotation; legacy's stays open.
	require.Len(t, rep.OpenViolations, 1)
	assert.Equal(t, "prod/legacy", rep.OpenViolations[0].Secret)
	assert.Equal(t, "max_age_exceeded", rep.OpenViolations[0].Reason)
}

func TestReportFormats(t *testing.T) {
	recs, inv, now := scenario(t)
	rep := BuildReport(ReportInput{From: t0, To: now, Now: now, Records: recs, Inventory: inv})
	outputs := map[string]string{}
	for _, f := range []string{FormatText, FormatMarkdown, FormatJSON, FormatCSV, FormatHTML} {
		var b bytes.Buffer
		require.NoError(t, rep.Write(&b, f), f)
		outputs[f] = b.String()
		for _, leak := range []string{reportSecret.Reveal(), "key_pay_new_2222", "key_legacy_3333"} {
			assert.NotContains(t, b.String(), leak, "%s output leaks %q", f, leak)
		}
	}
	assert.Regexp(t, `prod/legacy\s+production\s+mm_42\s+…3333\s+extra: refunds:write; missing: reports:read\s+120d / 90d OVERDUE`, outputs[FormatText])
	assert.Contains(t, outputs[FormatText], "OPEN VIOLATIONS (1)")
	assert.Contains(t, outputs[FormatMarkdown], "| prod/pay | production | mm_42 | …2222 | as policy | 20d / 90d | 2026-03-11 | compromise | 2026-06-09 |")
	assert.Contains(t, outputs[FormatMarkdown], "### slack-emg1: compromise by U0SEC via slack")

	var decoded Report
	require.NoError(t, json.Unmarshal([]byte(outputs[FormatJSON]), &decoded))
	assert.Equal(t, rep.Secrets[0].Key, decoded.Secrets[0].Key)
	assert.Len(t, decoded.Emergencies[0].Timeline, 4)

	rows, err := csv.NewReader(strings.NewReader(outputs[FormatCSV])).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+2+4+1)
	assert.Equal(t, []string{"secret", "prod/legacy", "production", "mm_42", "…3333"}, rows[1][:5])
	assert.Equal(t, "true", rows[1][11])
	assert.Equal(t, "emergency", rows[3][0])
	assert.Equal(t, "violation", rows[7][0])

	html := outputs[FormatHTML]
	assert.Contains(t, html, "<svg")
	assert.NotContains(t, html, "<script")
	assert.Contains(t, html, `fill="#c62828"`, "the overdue key is drawn red")
	assert.Contains(t, html, "prod/legacy: 120d of 90d")

	require.ErrorContains(t, rep.Write(&bytes.Buffer{}, "pdf"), `unknown format "pdf"`)

	if dir := os.Getenv("AUDIT_REPORT_HTML_DIR"); dir != "" { // for looking at the page by hand
		require.NoError(t, os.WriteFile(dir+"/report.html", []byte(html), 0o600))
	}
}

func TestCSVNeutralisesFormulas(t *testing.T) {
	rep := Report{Secrets: []SecretRow{{Name: "=HYPERLINK(\"x\")"}}}
	var b bytes.Buffer
	require.NoError(t, rep.WriteCSV(&b))
	assert.Contains(t, b.String(), `'=HYPERLINK`)
}

func TestReadRecordsNamesBadLine(t *testing.T) {
	_, err := ReadRecords(strings.NewReader("{\"seq\":1}\nnot json\n"))
	require.ErrorContains(t, err, "line 2")
}
