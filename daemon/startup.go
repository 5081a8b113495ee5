package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// StartupPass finishes what a stopped or killed daemon (or a replica) left
// undone, each with the cause it was asked for:
//   - a trigger whose intent is kept on the secret and not carried out (its
//     create may have happened, never stored: the same cause replays the
//     same create and adopts that credential);
//   - a rotation in flight (AWSPENDING off the current version), under the
//     cause whose version it is: an open intent, or a recent schedule slot;
//   - a schedule slot that was due while the daemon was down, or killed
//     before anything was stored: at once if its window is open, else when
//     it opens;
//   - a secret older than its policy allows, or never rotated.
//
// Version ids derive from the causes, so two replicas starting together
// converge.
func (d *Daemon) StartupPass(ctx context.Context) {
	now := d.clock.Now()
	slots := d.recentSlots(now)
	type group struct {
		trig    rotator.Trigger
		entries []inventory.Entry
	}
	var order []string
	groups := map[string]*group{}
	add := func(trig rotator.Trigger, e inventory.Entry) {
		g, ok := groups[trig.ID]
		if !ok {
			g = &group{trig: trig}
			groups[trig.ID] = g
			order = append(order, trig.ID)
		}
		g.entries = append(g.entries, e)
	}
	var intents, inFlight, missed, overdue int
	for _, e := range d.catalog.All() {
		if e.Missing {
			continue
		}
		if in, ok := openIntent(e, now); ok {
			if _, known := d.triggers.get(in.Trigger.ID); known {
				continue // this process runs it already (a pass on taking the lease)
			}
			intents++
			if in.OldKey != "" {
				d.resumeOldKeyIntent(e, in)
				continue
			}
			add(in.Trigger, e)
			continue
		}
		cur, hasCur := e.Stored.VersionWithStage(secretstore.StageCurrent)
		pend, hasPend := e.Stored.VersionWithStage(secretstore.StagePending)
		ps := slots[e.Managed.Policy]
		switch {
		case hasPend && (!hasCur || pend.ID != cur.ID):
			inFlight++
			add(d.triggerOfPending(e, pend.ID, slots, now), e)
		case !hasCur:
			overdue++
			add(rotator.Trigger{Kind: events.CauseScheduled, ID: "overdue:initial", Source: events.SourceStartup, Actor: "startup", At: now}, e)
		default:
			since, known := e.CurrentSince()
			if len(ps) > 0 && known && since.Before(ps[len(ps)-1]) && !rotator.TriggerSettled(e.Managed, e.Stored, slotCauseID(ps[len(ps)-1])) {
				missed++
				last := ps[len(ps)-1]
				add(rotator.Trigger{Kind: events.CauseScheduled, ID: slotCauseID(last), Source: events.SourceStartup, Actor: "startup", At: last}, e)
				continue
			}
			if p, ok := d.policies.Get(e.Managed.Policy); ok && p.MaxAge > 0 && known && now.Sub(since) > p.MaxAge {
				overdue++
				add(rotator.Trigger{Kind: events.CauseScheduled, ID: "overdue:" + cur.ID, Source: events.SourceStartup, Actor: "startup", At: now}, e)
			}
		}
	}
	if len(order) == 0 {
		return
	}
	d.log.Info("start-up pass", "intents", intents, "in_flight", inFlight, "missed_slots", missed, "overdue", overdue)
	for _, id := range order {
		g := groups[id]
		switch {
		case g.trig.Kind != events.CauseScheduled:
			d.resumeTrigger(g.trig, g.entries)
		case strings.HasPrefix(id, "slot:"):
			d.runSlotInWindow(g.trig, g.entries)
		default:
			d.submitAll(g.entries, g.trig)
		}
	}
}

// recentSlots lists, per policy with a schedule, its slots of the last
// eight days (at most the last 16), oldest first.
func (d *Daemon) recentSlots(now time.Time) map[string][]time.Time {
	out := map[string][]time.Time{}
	for _, name := range d.policies.Names() {
		p, ok := d.policies.Get(name)
		if !ok || p.Schedule == nil {
			continue
		}
		var list []time.Time
		t := now.Add(-laki.MaxExpireDelay - 24*time.Hour)
		for range 100000 {
			n := p.Schedule.Next(t)
			if n.IsZero() || n.After(now) {
				break
			}
			list = append(list, n.UTC())
			t = n
		}
		if len(list) > 16 {
			list = list[len(list)-16:]
		}
		out[name] = list
	}
	return out
}

// runSlotInWindow runs a missed slot now if its policy's window is open,
// else when it next opens.
func (d *Daemon) runSlotInWindow(trig rotator.Trigger, entries []inventory.Entry) {
	p, ok := d.policies.Get(entries[0].Managed.Policy)
	now := d.clock.Now()
	if !ok || p.Window.IsZero() || p.InWindow(now) {
		d.submitAll(entries, trig)
		return
	}
	at := p.NextWindowStart(now)
	d.log.Info("missed slot waits for its window", "policy", p.Name, "slot", trig.ID, "at", at)
	d.goBackground(func(ctx context.Context) {
		select {
		case <-d.quit:
		case <-d.clock.After(at.Sub(now)):
			d.submitAll(entries, trig)
		}
	})
}

// resumeTrigger runs a trigger found open in the store, as asked.
func (d *Daemon) resumeTrigger(trig rotator.Trigger, entries []inventory.Entry) {
	if _, exists := d.triggers.get(trig.ID); !exists {
		st := trigger.Status{ID: trig.ID, State: trigger.StateQueued, Cause: trig.Kind, Source: trig.Source,
			Reason: trig.Reason, Actor: trig.Actor, OnBehalfOf: trig.OnBehalfOf, CreatedAt: trig.At, Total: len(entries)}
		for _, e := range entries {
			st.Secrets = append(st.Secrets, trigger.SecretProgress{Secret: e.Managed.Name, State: trigger.StateQueued})
		}
		d.triggers.add(st)
	}
	d.log.Info("resuming a trigger kept in the store", "trigger", trig.ID, "cause", trig.Kind, "secrets", len(entries))
	if trig.Kind.Emergency() {
		// Open past its time already: say so now, not after the first try.
		for _, e := range entries {
			d.escalate(context.Background(), rotator.Job{Secret: e.Managed, Trigger: trig}, errEmergencyOpenAtStart)
		}
	}
	// A rotation promoted before the restart was never reported (nor, maybe,
	// the old credential ended): finishing it here reports it.
	d.runTriggerJobs(trig.ID, entries, trig, true)
}
