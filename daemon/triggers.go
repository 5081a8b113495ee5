package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/rotator"
)

// triggerBook remembers the triggers of this process and their progress.
// Losing it on restart loses only the progress view: the rotations
// themselves are recorded in the store and roll forward.
type triggerBook struct {
	mu       sync.Mutex
	triggers map[string]*httpapi.TriggerStatus
	order    []string
	keep     int
}

func newTriggerBook(keep int) *triggerBook {
	return &triggerBook{triggers: map[string]*httpapi.TriggerStatus{}, keep: keep}
}

func (b *triggerBook) add(st httpapi.TriggerStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.triggers[st.ID] = &st
	b.order = append(b.order, st.ID)
	for len(b.order) > b.keep {
		delete(b.triggers, b.order[0])
		b.order = b.order[1:]
	}
}

func (b *triggerBook) get(id string) (httpapi.TriggerStatus, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.triggers[id]
	if !ok {
		return httpapi.TriggerStatus{}, false
	}
	cp := *st
	cp.Secrets = append([]httpapi.SecretProgress(nil), st.Secrets...)
	return cp, true
}

func (b *triggerBook) update(id string, f func(*httpapi.TriggerStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.triggers[id]; ok {
		f(st)
	}
}

// newTriggerID returns a random trigger id; it becomes the rotation's cause
// id, so every trigger is its own rotation.
func newTriggerID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "trg_" + hex.EncodeToString(b[:])
}

// Trigger implements httpapi.Controller: it selects the secrets, records the
// trigger, and queues the rotations (emergencies ahead of scheduled work).
func (d *Daemon) Trigger(ctx context.Context, req httpapi.TriggerRequest, source events.Source) (httpapi.TriggerStatus, error) {
	return d.trigger(ctx, req, source, newTriggerID())
}

func (d *Daemon) trigger(ctx context.Context, req httpapi.TriggerRequest, source events.Source, id string) (httpapi.TriggerStatus, error) {
	now := d.clock.Now()
	refuse := func(format string, args ...any) (httpapi.TriggerStatus, error) {
		err := fmt.Errorf("%w: %s", httpapi.ErrBadTrigger, fmt.Sprintf(format, args...))
		d.bus.Emit(ctx, events.Event{
			Time: now, Step: events.StepTrigger, Outcome: events.OutcomeRefused, Severity: events.SeverityWarning,
			Secret: req.Secret, Cause: req.Cause, Source: source, Actor: req.Requester, Reason: req.Reason,
			TriggerID: id, Error: err.Error(), Details: ownerDetail(req.Owner),
		})
		return httpapi.TriggerStatus{}, err
	}
	switch req.Cause {
	case events.CauseCompromise, events.CausePersonnel, events.CauseManual:
	case "":
		return refuse("cause is required: compromise, personnel or manual")
	default:
		return refuse("cause %q is not compromise, personnel or manual", req.Cause)
	}
	selectors := 0
	for _, set := range []bool{req.Secret != "", req.Owner != "", req.All} {
		if set {
			selectors++
		}
	}
	if selectors != 1 {
		return refuse("name exactly one of a secret, an owner, or all")
	}
	if strings.TrimSpace(req.Requester) == "" {
		return refuse("requester is required: say who asked")
	}
	if req.Cause != events.CauseManual && strings.TrimSpace(req.Reason) == "" {
		return refuse("reason is required for a %s rotation", req.Cause)
	}
	entries := d.selectEntries(req)
	if len(entries) == 0 {
		switch {
		case req.Secret != "":
			return refuse("no managed secret is named %q", req.Secret)
		case req.Owner != "":
			return refuse("owner %q has no managed secrets", req.Owner)
		default:
			return refuse("there are no managed secrets")
		}
	}
	st := httpapi.TriggerStatus{
		ID: id, State: httpapi.StateQueued, Cause: req.Cause, Source: source,
		Reason: req.Reason, Requester: req.Requester, CreatedAt: now, Total: len(entries),
	}
	for _, e := range entries {
		st.Secrets = append(st.Secrets, httpapi.SecretProgress{Secret: e.Managed.Name, State: httpapi.StateQueued})
	}
	if _, exists := d.triggers.get(id); exists {
		st, _ := d.triggers.get(id)
		return st, nil
	}
	cause := rotator.Cause{Kind: req.Cause, ID: id, Source: source, Actor: req.Requester, Reason: req.Reason, At: now.Truncate(time.Second)}
	// Durable before "accepted": a restart or another replica finishes it as asked.
	if err := d.recordIntent(ctx, entries, intent{Cause: cause}); err != nil {
		d.log.Error("trigger not accepted: its intent could not be kept", "trigger", id, "err", err)
		return httpapi.TriggerStatus{}, err
	}
	d.triggers.add(st)
	accepted := events.Event{
		Time: now, Step: events.StepTrigger, Outcome: events.OutcomeSucceeded, Severity: severityOfCause(req.Cause),
		Secret: req.Secret, Cause: req.Cause, Source: source, Actor: req.Requester, Reason: req.Reason, TriggerID: id,
		Details: mergeDetails(ownerDetail(req.Owner), map[string]string{"secrets": fmt.Sprint(len(entries))}),
	}
	if req.Secret != "" { // routes by environment see the first message of an emergency too
		accepted.Kind, accepted.Environment = string(entries[0].Managed.Kind), string(entries[0].Managed.Environment)
		accepted.MasterMerchantID = entries[0].Managed.MasterMerchantID
	}
	d.bus.Emit(ctx, accepted)
	d.runTrigger(id, entries, cause)
	return st, nil
}

func (d *Daemon) selectEntries(req httpapi.TriggerRequest) []inventory.Entry {
	switch {
	case req.Secret != "":
		if e, ok := d.catalog.Get(req.Secret); ok && !e.Missing {
			return []inventory.Entry{e}
		}
		return nil
	case req.Owner != "":
		return d.catalog.Select(func(e inventory.Entry) bool { return !e.Missing && e.Managed.HasOwner(req.Owner) })
	default:
		return d.catalog.Select(func(e inventory.Entry) bool { return !e.Missing })
	}
}

// runTrigger queues the jobs on the daemon's own context (a trigger outlives
// the request that made it) and keeps the trigger's progress.
func (d *Daemon) runTrigger(id string, entries []inventory.Entry, cause rotator.Cause) {
	d.runTriggerJobs(id, entries, cause, false)
}

// runTriggerJobs is runTrigger; resumed marks a trigger finished after a
// restart, whose rotations report their end even when found done.
func (d *Daemon) runTriggerJobs(id string, entries []inventory.Entry, cause rotator.Cause, resumed bool) {
	jobs := make([]rotator.Job, 0, len(entries))
	var bad []httpapi.SecretProgress
	for _, e := range entries {
		job, err := d.jobFor(e, cause)
		if err != nil {
			bad = append(bad, httpapi.SecretProgress{Secret: e.Managed.Name, State: httpapi.StateFailed, Error: err.Error()})
			continue
		}
		job.Join = d.joinOpenIntent(e.Managed, cause)
		job.Announce = resumed
		jobs = append(jobs, job)
	}
	d.triggers.update(id, func(st *httpapi.TriggerStatus) {
		st.State = httpapi.StateRunning
		for _, b := range bad {
			setProgress(st, b)
			st.Failed++
		}
		if len(jobs) == 0 {
			finish(st, d.clock.Now())
		}
	})
	if len(jobs) == 0 {
		return
	}
	var each func(o rotator.JobOutcome, n int)
	each = func(o rotator.JobOutcome, n int) {
		if d.retryEmergency(o) {
			// Alert as soon as a failure shows the emergency open too long,
			// not only after the next wait: a try can itself take minutes.
			d.escalate(context.Background(), o.Job, o.Err)
			// Acted on until done: the failure shows, the trigger stays open.
			d.triggers.update(id, func(st *httpapi.TriggerStatus) {
				setProgress(st, httpapi.SecretProgress{Secret: o.Job.Secret.Name, State: httpapi.StateRunning, Error: o.Err.Error()})
			})
			d.again(o, n, each)
			return
		}
		if !errors.Is(o.Err, rotator.ErrAborted) && !errors.Is(o.Err, rotator.ErrClosed) {
			d.settleIntent(context.Background(), o)
		}
		d.triggers.update(id, func(st *httpapi.TriggerStatus) {
			p := httpapi.SecretProgress{Secret: o.Job.Secret.Name, State: httpapi.StateSucceeded, VersionID: o.Result.VersionID}
			if o.Err != nil {
				p.State, p.Error = httpapi.StateFailed, o.Err.Error()
				st.Failed++
			} else {
				st.Done++
			}
			setProgress(st, p)
			if st.Done+st.Failed == st.Total {
				finish(st, d.clock.Now())
			}
		})
	}
	d.goBackground(func(ctx context.Context) {
		d.runJobs(ctx, jobs, func(o rotator.JobOutcome) { each(o, 0) })
	})
}

func setProgress(st *httpapi.TriggerStatus, p httpapi.SecretProgress) {
	for i := range st.Secrets {
		if st.Secrets[i].Secret == p.Secret {
			st.Secrets[i] = p
			return
		}
	}
	st.Secrets = append(st.Secrets, p)
}

func finish(st *httpapi.TriggerStatus, now time.Time) {
	st.FinishedAt = &now
	switch {
	case st.Failed == 0:
		st.State = httpapi.StateSucceeded
	case st.Done == 0:
		st.State = httpapi.StateFailed
	default:
		st.State = httpapi.StatePartial
	}
}

// TriggerStatus implements httpapi.Controller.
func (d *Daemon) TriggerStatus(id string) (httpapi.TriggerStatus, bool) { return d.triggers.get(id) }

func severityOfCause(c events.Cause) events.Severity {
	if c.Emergency() {
		return events.SeverityCritical
	}
	return events.SeverityInfo
}

func ownerDetail(owner string) map[string]string {
	if owner == "" {
		return nil
	}
	return map[string]string{"owner": owner}
}

func mergeDetails(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// WaitTrigger follows a trigger of this process until it has finished.
func (d *Daemon) WaitTrigger(ctx context.Context, id string, progress func(httpapi.TriggerStatus)) (httpapi.TriggerStatus, error) {
	last := -1
	for {
		st, ok := d.triggers.get(id)
		if !ok {
			return st, fmt.Errorf("no trigger %q", id)
		}
		if n := st.Done + st.Failed; n != last && progress != nil {
			last = n
			progress(st)
		}
		if st.Finished() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
