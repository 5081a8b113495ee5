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
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// triggerBook remembers the triggers of this process and their progress.
// Losing it on restart loses only the progress view: the rotations
// themselves are recorded in the store and roll forward.
type triggerBook struct {
	mu       sync.Mutex
	triggers map[string]*trigger.Status
	order    []string
	keep     int
}

func newTriggerBook(keep int) *triggerBook {
	return &triggerBook{triggers: map[string]*trigger.Status{}, keep: keep}
}

func (b *triggerBook) add(st trigger.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.triggers[st.ID] = &st
	b.order = append(b.order, st.ID)
	for len(b.order) > b.keep {
		delete(b.triggers, b.order[0])
		b.order = b.order[1:]
	}
}

func (b *triggerBook) get(id string) (trigger.Status, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.triggers[id]
	if !ok {
		return trigger.Status{}, false
	}
	cp := *st
	cp.Secrets = append([]trigger.SecretProgress(nil), st.Secrets...)
	return cp, true
}

func (b *triggerBook) update(id string, f func(*trigger.Status)) {
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

// Trigger is the daemon's one trigger path (trigger.Path): every door
// (HTTP API, security events, Slack, the CLI in-process, the 401/403
// watch) comes here. It validates the request, records exactly one
// "accepted" or "refused" event, and queues the rotations (emergencies
// ahead of scheduled work).
func (d *Daemon) Trigger(ctx context.Context, req trigger.Request) (trigger.Status, error) {
	if req.ID == "" {
		req.ID = newTriggerID()
	}
	now := d.clock.Now()
	if ref := d.validate(req); ref != nil {
		d.bus.Emit(ctx, events.Event{
			Time: now, Step: events.StepTrigger, Outcome: events.OutcomeRefused, Severity: events.SeverityWarning,
			Secret: req.Secret, Cause: req.Cause, Source: req.Source, Actor: req.Actor, OnBehalfOf: req.OnBehalfOf,
			Reason: req.Reason, TriggerID: req.ID, Error: ref.Error(), Details: ownerDetail(req.Owner),
		})
		return trigger.Status{}, ref
	}
	if st, exists := d.triggers.get(req.ID); exists {
		return st, nil
	}
	entries := d.selectEntries(req)
	st := trigger.Status{
		ID: req.ID, State: trigger.StateQueued, Cause: req.Cause, Source: req.Source, Reason: req.Reason,
		Actor: req.Actor, OnBehalfOf: req.OnBehalfOf, CreatedAt: now, Total: len(entries),
	}
	for _, e := range entries {
		st.Secrets = append(st.Secrets, trigger.SecretProgress{Secret: e.Managed.Name, State: trigger.StateQueued})
	}
	trig := rotator.Trigger{Kind: req.Cause, ID: req.ID, Source: req.Source, Actor: req.Actor, OnBehalfOf: req.OnBehalfOf,
		Reason: req.Reason, At: now.Truncate(time.Millisecond)}
	// Durable before "accepted": a restart or another replica finishes it as asked.
	if err := d.recordIntent(ctx, entries, intent{Trigger: trig}); err != nil {
		d.log.Error("trigger not accepted: its intent could not be kept", "trigger", req.ID, "err", err)
		return trigger.Status{}, err
	}
	d.triggers.add(st)
	accepted := events.Event{
		Time: now, Step: events.StepTrigger, Outcome: events.OutcomeSucceeded, Severity: severityOfCause(req.Cause),
		Secret: req.Secret, Cause: req.Cause, Source: req.Source, Actor: req.Actor, OnBehalfOf: req.OnBehalfOf,
		Reason: req.Reason, TriggerID: req.ID,
		Details: mergeDetails(ownerDetail(req.Owner), map[string]string{"secrets": fmt.Sprint(len(entries))}),
	}
	if req.Secret != "" { // routes by environment see the first message of an emergency too
		accepted.Kind, accepted.Environment = string(entries[0].Managed.Kind), string(entries[0].Managed.Environment)
		accepted.MasterMerchantID = entries[0].Managed.MasterMerchantID
	}
	d.bus.Emit(ctx, accepted)
	d.runTrigger(req.ID, entries, trig)
	return st, nil
}

// validate returns why req cannot run, or nil.
func (d *Daemon) validate(req trigger.Request) *trigger.Refusal {
	switch req.Cause {
	case events.CauseCompromise, events.CausePersonnel, events.CauseManual:
	case "":
		return trigger.Refusef("cause is required: compromise, personnel or manual")
	default:
		return trigger.Refusef("cause %q is not compromise, personnel or manual", req.Cause)
	}
	selectors := 0
	for _, set := range []bool{req.Secret != "", req.Owner != "", req.All} {
		if set {
			selectors++
		}
	}
	if selectors != 1 {
		return trigger.Refusef("name exactly one of a secret, an owner, or all")
	}
	if strings.TrimSpace(req.Actor) == "" {
		return trigger.Refusef("the caller is not identified: no authenticated actor")
	}
	if req.OnBehalfOf != "" && strings.TrimSpace(req.OnBehalfOf) == "" {
		return trigger.Refusef("requester, when given, must name someone")
	}
	if req.Cause != events.CauseManual && strings.TrimSpace(req.Reason) == "" {
		return trigger.Refusef("reason is required for a %s rotation", req.Cause)
	}
	if _, exists := d.triggers.get(req.ID); exists {
		return nil
	}
	if len(d.selectEntries(req)) == 0 {
		switch {
		case req.Secret != "":
			return trigger.Refusef("no managed secret is named %q", req.Secret)
		case req.Owner != "":
			return trigger.Refusef("owner %q has no managed secrets", req.Owner)
		default:
			return trigger.Refusef("there are no managed secrets")
		}
	}
	return nil
}

func (d *Daemon) selectEntries(req trigger.Request) []inventory.Entry {
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
func (d *Daemon) runTrigger(id string, entries []inventory.Entry, trig rotator.Trigger) {
	d.runTriggerJobs(id, entries, trig, false)
}

// runTriggerJobs is runTrigger; resumed marks a trigger finished after a
// restart, whose rotations report their end even when found done.
func (d *Daemon) runTriggerJobs(id string, entries []inventory.Entry, trig rotator.Trigger, resumed bool) {
	jobs := make([]rotator.Job, 0, len(entries))
	var bad []trigger.SecretProgress
	for _, e := range entries {
		job, err := d.jobFor(e, trig)
		if err != nil {
			bad = append(bad, trigger.SecretProgress{Secret: e.Managed.Name, State: trigger.StateFailed, Error: err.Error()})
			continue
		}
		job.Join = d.joinOpenIntent(e.Managed, trig)
		job.Announce = resumed
		jobs = append(jobs, job)
	}
	d.triggers.update(id, func(st *trigger.Status) {
		st.State = trigger.StateRunning
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
			d.triggers.update(id, func(st *trigger.Status) {
				setProgress(st, trigger.SecretProgress{Secret: o.Job.Secret.Name, State: trigger.StateRunning, Error: o.Err.Error()})
			})
			d.again(o, n, each)
			return
		}
		if !errors.Is(o.Err, rotator.ErrAborted) && !errors.Is(o.Err, rotator.ErrClosed) {
			d.settleIntent(context.Background(), o)
		}
		d.triggers.update(id, func(st *trigger.Status) {
			p := trigger.SecretProgress{Secret: o.Job.Secret.Name, State: trigger.StateSucceeded, VersionID: o.Result.VersionID}
			if o.Err != nil {
				p.State, p.Error = trigger.StateFailed, o.Err.Error()
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

func setProgress(st *trigger.Status, p trigger.SecretProgress) {
	for i := range st.Secrets {
		if st.Secrets[i].Secret == p.Secret {
			st.Secrets[i] = p
			return
		}
	}
	st.Secrets = append(st.Secrets, p)
}

func finish(st *trigger.Status, now time.Time) {
	st.FinishedAt = &now
	switch {
	case st.Failed == 0:
		st.State = trigger.StateSucceeded
	case st.Done == 0:
		st.State = trigger.StateFailed
	default:
		st.State = trigger.StatePartial
	}
}

// TriggerStatus returns a trigger of this process (trigger.Path).
func (d *Daemon) TriggerStatus(id string) (trigger.Status, bool) { return d.triggers.get(id) }

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
func (d *Daemon) WaitTrigger(ctx context.Context, id string, progress func(trigger.Status)) (trigger.Status, error) {
	return trigger.Follow(ctx, 50*time.Millisecond, func(context.Context) (trigger.Status, error) {
		st, ok := d.triggers.get(id)
		if !ok {
			return st, fmt.Errorf("no trigger %q", id)
		}
		return st, nil
	}, progress)
}
