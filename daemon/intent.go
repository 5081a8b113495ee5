package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// openIntent is the intent kept on the secret that has not been carried out.
func openIntent(e inventory.Entry, now time.Time) (intent, bool) {
	in, ok := intentFrom(e.Stored.Tags)
	if !ok || now.Sub(in.Trigger.At) > intentHorizon {
		return intent{}, false
	}
	if done := doneFrom(e.Stored.Tags); done.ID == in.Trigger.ID || done.Answer.ID == in.Trigger.ID ||
		(in.OldKey == "" && done.answers(in.Trigger)) {
		return intent{}, false
	}
	if in.OldKey == "" && rotator.TriggerSettled(e.Managed, e.Stored, in.Trigger.ID) {
		// Written and no longer in flight: open only while its version is
		// current (the end of the old credential may not have been asked
		// for yet), not once another rotation replaced it.
		if v, ok := e.Stored.Version(rotator.VersionOf(e.Managed, e.Stored, in.Trigger.ID)); !ok || !v.Has(secretstore.StageCurrent) {
			return intent{}, false
		}
	}
	return in, true
}

// recordIntent keeps the intent on every secret before the trigger is
// acknowledged. An open compromise is never overwritten by a lesser cause:
// the compromise is what a restart must finish first (the lesser trigger
// still runs, after it, from this process). The catalog's view is updated
// so that this process sees its own tags.
//
// The writes go out intentKeepers at a time: each waits its turn in the
// account's write limiter behind the writes of any batch in flight, so one
// at a time would hold a large personnel trigger's answer for minutes.
func (d *Daemon) recordIntent(ctx context.Context, entries []inventory.Entry, in intent) error {
	in.Writer = d.instance
	tags := in.tags()
	if in.Trigger.Kind.Emergency() {
		ctx = secretstore.WithUrgent(ctx) // ahead of a batch's writes, as its rotations will be
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(intentKeepers)
	for _, e := range entries {
		if open, ok := openIntent(e, in.Trigger.At); ok && (open.Trigger.ID == in.Trigger.ID ||
			(open.Trigger.Kind == events.CauseCompromise && in.Trigger.Kind != events.CauseCompromise)) {
			continue // kept already, or a compromise to finish first
		}
		env := d.envs[e.Managed.Environment]
		if env == nil {
			continue // refused later by jobFor, naming the environment
		}
		name := e.Managed.Name
		g.Go(func() error {
			if err := env.Store.Tag(gctx, name, tags); err != nil {
				return fmt.Errorf("keeping the trigger's intent on %q before accepting it: %w", name, err)
			}
			d.updateTags(name, tags)
			return nil
		})
	}
	return g.Wait()
}

// intentKeepers bounds the intent writes of one trigger in flight at once.
const intentKeepers = 32

// markIntentDone records that the intent was carried out, by no rotation
// (it gave up, or ended an exposed old key).
func (d *Daemon) markIntentDone(ctx context.Context, ms inventory.ManagedSecret, id string) {
	d.markIntentAnswered(ctx, ms, intentDone{ID: id})
}

// markIntentAnswered records that the intent was carried out, and by which
// ask's rotation: a later ask of the same moment is answered by it too.
func (d *Daemon) markIntentAnswered(ctx context.Context, ms inventory.ManagedSecret, done intentDone) {
	env := d.envs[ms.Environment]
	if env == nil {
		return
	}
	id := done.ID
	tags := map[string]string{TagIntentDone: done.tag()}
	if err := env.Store.Tag(ctx, ms.Name, tags); err != nil {
		d.log.Warn("marking the trigger's intent done failed; a restart repeats it, which is idempotent", "secret", ms.Name, "trigger", id, "err", err)
		return
	}
	d.updateTags(ms.Name, tags)
}

func (d *Daemon) updateTags(name string, tags map[string]string) {
	e, ok := d.catalog.Get(name)
	if !ok {
		return
	}
	s := e.Stored
	merged := make(map[string]string, len(s.Tags)+len(tags))
	for k, v := range s.Tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	s.Tags = merged
	d.catalog.Update(name, s)
}

// settleIntent marks an intent done once its rotation has finished (the old
// credential's end scheduled too), or gave up. Until then a restart finishes
// it, including a rotation killed between its promote and the end of the
// old credential, which the store alone cannot tell from a finished one.
func (d *Daemon) settleIntent(ctx context.Context, o rotator.JobOutcome) {
	if o.Job.Trigger.Kind == events.CauseScheduled {
		return
	}
	if o.Err != nil && o.Job.Trigger.Kind.Emergency() {
		return // stays open: a restart tries again
	}
	done := intentDone{ID: o.Job.Trigger.ID, Finished: d.clock.Now()}
	if o.Err == nil {
		done.Answer = o.Job.Trigger
		if o.Result.JoinedTrigger.ID != "" {
			done.Answer = o.Result.JoinedTrigger
		}
	}
	d.markIntentAnswered(ctx, o.Job.Secret, done)
}

// triggerOfPending names the trigger of a rotation left in flight: the open
// intent whose version it is, else the recent schedule slot whose version it
// is, else (a version of unknown origin) a scheduled resume.
func (d *Daemon) triggerOfPending(e inventory.Entry, pendingID string, slots map[string][]time.Time, now time.Time) rotator.Trigger {
	if in, ok := intentFrom(e.Stored.Tags); ok && rotator.VersionOf(e.Managed, e.Stored, in.Trigger.ID) == pendingID {
		return in.Trigger
	}
	for _, s := range slots[e.Managed.Policy] {
		id := slotCauseID(s)
		if rotator.VersionOf(e.Managed, e.Stored, id) == pendingID {
			return rotator.Trigger{Kind: events.CauseScheduled, ID: id, Source: events.SourceSchedule, Actor: "scheduler", At: s}
		}
	}
	return rotator.Trigger{Kind: events.CauseScheduled, ID: "resume:" + pendingID, Source: events.SourceStartup, Actor: "startup", At: now}
}

func slotCauseID(slot time.Time) string { return "slot:" + slot.UTC().Format(time.RFC3339) }

// severity orders causes for joining: a job joins another open ask only
// when that ask's grace is no longer than its own.
func severity(k events.Cause) int {
	switch k {
	case events.CauseCompromise:
		return 3
	case events.CausePersonnel:
		return 2
	case events.CauseManual:
		return 1
	default:
		return 0
	}
}

// joinOpenIntent is the engine's Job.Join for triggers: the open intent
// kept on the secret now, when it is another ask at least as severe (or the
// same ask, kept by several replicas). The process that kept it last writes
// the rotation; another replica follows it rather than writing the same
// version at the same time (see rotator.Joined).
func (d *Daemon) joinOpenIntent(ms inventory.ManagedSecret, own rotator.Trigger) func(secretstore.Secret) (rotator.Joined, bool) {
	return func(info secretstore.Secret) (rotator.Joined, bool) {
		done := doneFrom(info.Tags)
		if done.Answer.ID != own.ID && done.answers(own) && !d.askedAfter(own.ID, done.Answer.ID) {
			// Answered by a rotation that finished already (the same ask,
			// made of another replica that was quicker): it is reported
			// as that rotation, once.
			c := own
			c.Kind, c.ID, c.At = done.Answer.Kind, done.Answer.ID, done.Answer.At
			return rotator.Joined{Trigger: c}, true
		}
		in, ok := intentFrom(info.Tags)
		if !ok || in.OldKey != "" || done.ID == in.Trigger.ID || done.Answer.ID == in.Trigger.ID ||
			own.At.Sub(in.Trigger.At) > intentHorizon || severity(in.Trigger.Kind) < severity(own.Kind) {
			return rotator.Joined{}, false
		}
		if v, there := info.Version(rotator.VersionOf(ms, info, in.Trigger.ID)); there && !v.Has(secretstore.StagePending) {
			// Written and settled. The same ask made of another replica at
			// the same moment (a trigger sent to every replica) is answered
			// by that rotation: its credential was made after both asks
			// arrived. A compromise never is: the exposed key may be the
			// very one that rotation made.
			if own.Kind != events.CauseCompromise && in.Trigger.Kind == own.Kind && (own.At.Sub(in.Trigger.At)).Abs() <= concurrentAsk {
				return rotator.Joined{Trigger: in.Trigger}, true
			}
			return rotator.Joined{}, false
		}
		follow := in.Writer != "" && in.Writer != d.instance
		if in.Trigger.ID == own.ID {
			return rotator.Joined{Trigger: own, Follow: follow}, follow
		}
		return rotator.Joined{Trigger: in.Trigger, Follow: follow}, true
	}
}

// askedAfter reports whether this process accepted its trigger own after
// its own trigger answer had finished (told apart even at the same
// instant, where the store's times could not): then own is a new ask, not
// the same one.
func (d *Daemon) askedAfter(own, answer string) bool {
	mine, ok1 := d.triggers.get(own)
	prior, ok2 := d.triggers.get(answer)
	return ok1 && ok2 && prior.FinishedAt != nil && !prior.FinishedAt.After(mine.CreatedAt)
}

// newInstanceID names this daemon process in the intents it keeps.
func newInstanceID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}
