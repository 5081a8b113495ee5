package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/testutil/diskfull"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// buildOnDisk is build with the audit file written through disk.
func (w *world) buildOnDisk(disk *diskfull.Disk) *daemon.Service {
	w.t.Helper()
	cfg, err := config.Parse(w.cfgPath, w.cfgYAML)
	if err != nil {
		w.t.Fatalf("config: %v", err)
	}
	svc, err := daemon.Build(context.Background(), cfg, daemon.BuildOptions{
		Clock: w.clk, LookupEnv: w.lookupEnv, Stdout: &w.stdout,
		Logger:         slog.New(slog.NewTextHandler(&w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stores:         map[laki.Environment]secretstore.Store{laki.Sandbox: w.store},
		RetireInterval: 24 * time.Hour, RefreshInterval: 24 * time.Hour,
		AuditFileWriter: disk.Wrap,
	})
	if err != nil {
		w.t.Fatalf("build: %v", err)
	}
	return svc
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func metricValue(t *testing.T, body, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The disk under the audit file fills up (a writer that returns ENOSPC,
// no real disk filled): the daemon fails closed, except for compromise.
func TestAuditDiskFullPausesRotationsButNotCompromise(t *testing.T) {
	w := newWorld(t, worldOptions{})
	disk := &diskfull.Disk{}
	r := w.run(w.buildOnDisk(disk), w.ln)
	ctx := context.Background()
	// Readiness is computed in the background: wait for the first result.
	w.eventually("/readyz passes before the disk fills", func() bool {
		code, _ := get(t, r.url+"/readyz")
		return code == http.StatusOK
	})
	oldCheckout, oldReporting := w.current(secCheckout), w.current(secReporting)

	disk.Full.Store(true)
	manual, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "ops@example", Reason: "routine"})
	if err != nil {
		t.Fatalf("manual trigger: %v", err)
	}
	// Readiness and metrics say the audit is down.
	w.eventually("/readyz fails on the audit", func() bool {
		// The failing check and its error are shown to an authenticated caller.
		code, body := getURL(t, r.url+"/readyz", apiToken)
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"audit"`) && strings.Contains(body, "no space left")
	})
	_, metrics := get(t, r.url+"/metrics")
	if v := metricValue(t, metrics, "lakirotator_audit_writable"); v != 0 {
		t.Errorf("lakirotator_audit_writable = %v while the disk is full, want 0", v)
	}
	if v := metricValue(t, metrics, "lakirotator_audit_write_failures_total"); v < 1 {
		t.Errorf("lakirotator_audit_write_failures_total = %v, want at least 1", v)
	}

	// A compromise rotation still runs, with a critical alert.
	comp, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secReporting, Cause: events.CauseCompromise, Requester: "sec@example", Reason: "key in a public repo"})
	if err != nil {
		t.Fatalf("compromise trigger: %v", err)
	}
	if st := w.waitTrigger(r, comp.ID); st.State != httpapi.StateSucceeded {
		t.Fatalf("compromise rotation while the audit is down ended %s: %+v", st.State, st.Secrets)
	}
	if got := w.current(secReporting); got.KeyID == oldReporting.KeyID {
		t.Fatalf("compromise rotation did not replace %s", secReporting)
	}
	alerted := false
	for _, e := range r.rec.Events() {
		if e.Step == events.StepAlert && e.Severity == events.SeverityCritical && e.Details["reason"] == "audit_unavailable" && e.Secret == secReporting {
			alerted = true
		}
	}
	if !alerted {
		t.Error("no critical audit_unavailable alert for the compromise rotation")
	}

	// The manual rotation is paused: still queued, the key untouched.
	for range 5 {
		w.clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	st, err := r.client.TriggerStatus(ctx, manual.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Finished() || st.Done != 0 {
		t.Fatalf("manual rotation went on while the audit was down: %+v", st)
	}
	if got := w.current(secCheckout); got.KeyID != oldCheckout.KeyID {
		t.Fatalf("%s rotated while the audit was down", secCheckout)
	}

	// Space is freed: no restart, no hand edit. The retry loop writes the
	// queued records, the paused rotation runs, readiness comes back.
	disk.Full.Store(false)
	if st := w.waitTrigger(r, manual.ID); st.State != httpapi.StateSucceeded {
		t.Fatalf("paused manual rotation ended %s after recovery: %+v", st.State, st.Secrets)
	}
	w.eventually("/readyz passes again", func() bool {
		code, _ := get(t, r.url+"/readyz")
		return code == http.StatusOK
	})
	_, metrics = get(t, r.url+"/metrics")
	if v := metricValue(t, metrics, "lakirotator_audit_writable"); v != 1 {
		t.Errorf("lakirotator_audit_writable = %v after recovery, want 1", v)
	}
	r.stop()

	// The audit holds the compromise rotation's records, the repair and
	// the recovery, on one intact chain.
	path := filepath.Join(w.dir, "audit.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := audit.ReadRecords(f)
	if err != nil {
		t.Fatal(err)
	}
	var compromiseDone, torn, recovered, manualDone bool
	for _, rec := range recs {
		e := rec.Event
		switch {
		case e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded && e.Cause == events.CauseCompromise && e.Secret == secReporting:
			compromiseDone = true
		case e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded && e.Cause == events.CauseManual && e.Secret == secCheckout:
			manualDone = true
		case e.Details["reason"] == "torn_tail_repaired":
			torn = true
		case e.Details["reason"] == "audit_recovered":
			recovered = true
		}
	}
	if !compromiseDone || !manualDone || !torn || !recovered {
		t.Errorf("audit records: compromise rotation %v, manual rotation %v, torn tail repaired %v, recovered %v; want all", compromiseDone, manualDone, torn, recovered)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(f)
	if err != nil || !res.OK() {
		t.Errorf("audit verify after recovery: %v %v", res, err)
	}
}

// Slots that fire during a long audit outage do not pile up: each secret
// keeps one paused scheduled rotation, which runs once the audit recovers.
func TestAuditOutageKeepsOneScheduledRotationPerSecret(t *testing.T) {
	w := newWorld(t, worldOptions{})
	disk := &diskfull.Disk{}
	r := w.run(w.buildOnDisk(disk), w.ln)
	ctx := context.Background()
	old := w.current(secCheckout)

	disk.Full.Store(true)
	// Any record closes the gate; a refused trigger makes one.
	if _, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: "no/such-secret", Cause: events.CauseManual, Requester: "ops@example"}); err == nil {
		t.Fatal("a trigger for a secret that does not exist was accepted")
	}
	w.eventually("the audit is unwritable", func() bool { return !r.svc.AuditWriter().Writable() })
	// Three days in hourly steps (the scheduler may register its first wait
	// after start-up): three daily slots of every policy fire.
	for range 72 {
		w.clk.Advance(time.Hour)
		time.Sleep(5 * time.Millisecond)
	}
	w.eventually("the slots fire while paused", func() bool { return strings.Count(w.logs.String(), "scheduled rotations due") >= 9 })
	if got := w.current(secCheckout); got.KeyID != old.KeyID {
		t.Fatalf("%s rotated while the audit was down", secCheckout)
	}

	disk.Full.Store(false)
	scheduled := func() int {
		return len(eventsWhere(r.rec, func(e events.Event) bool {
			return e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded && e.Secret == secCheckout && e.Cause == events.CauseScheduled
		}))
	}
	defer func() {
		if t.Failed() {
			t.Log(w.logs.String())
		}
	}()
	w.eventually("the paused scheduled rotation runs", func() bool { return scheduled() >= 1 })
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if n := scheduled(); n != 1 {
		t.Errorf("%d scheduled rotations of %s after the outage, want 1 (three slots fired while paused)", n, secCheckout)
	}
	if !strings.Contains(w.logs.String(), "scheduled rotation dropped") {
		t.Error("the dropped slots are not logged")
	}
}
