package daemon

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// The intent of a trigger is kept on each secret it covers, in tags, before
// the trigger is answered "accepted": what a restart, or another replica,
// needs to finish it exactly as asked. Scheduled slots need none (their
// cause is the slot). The tags stay until the next trigger replaces them;
// once the rotation has finished (the old credential's end asked for too),
// the intent is marked done with one more write.
const (
	// TagIntent: "<cause> <trigger id> <asked> <source>[ revoke-first][ by:<writer>]".
	TagIntent = "lakirotator:intent"
	// TagIntentBy: base64 of {"a": actor, "o": on behalf of, "r": reason,
	// "k": exposed old key to end} (tag values allow only a few characters).
	TagIntentBy = "lakirotator:intent-by"
	// TagIntentDone: "<trigger id>[ <kind> <asked> <cause id> <finished>]":
	// the last intent carried out and, when a rotation answered it, that
	// rotation's ask (its kind, when it was asked, the cause its version
	// derives from: the trigger's own, or the ask it joined) and when it
	// finished.
	TagIntentDone = "lakirotator:intent-done"
)

// Times in the intent tags are UTC RFC 3339 with milliseconds (24
// characters): whether an ask came before or after a rotation finished
// is a matter of milliseconds when a person asks again right after one.
// Both tags stay well within the 256 characters of a tag value: the
// longest trigger id kept is a security event's, "evt:" and 28 characters
// (see TestIntentTagsKeepMillisecondsWithinATagValue). Older versions
// wrote unix seconds; those are still read.
const tagTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTagTime(t time.Time) string { return t.UTC().Format(tagTimeLayout) }

// parseTagTime reads a time kept in an intent tag, in either form.
func parseTagTime(s string) (time.Time, error) {
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(secs, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

// intentByMax keeps TagIntentBy within the 256 characters of a tag value.
const intentByMax = 180

// intent is a trigger's durable record on one secret.
type intent struct {
	Trigger rotator.Trigger
	// Writer names the daemon process that kept it (the last one to, when
	// replicas keep the same ask): that one writes the rotation, the others
	// follow it.
	Writer string
	// OldKey, when set, asks to end an exposed key that is the secret's
	// previous one (still in its grace) rather than to rotate.
	OldKey string
}

type intentBy struct {
	Actor      string `json:"a,omitempty"`
	OnBehalfOf string `json:"o,omitempty"`
	Reason     string `json:"r,omitempty"`
	OldKey     string `json:"k,omitempty"`
}

func (in intent) tags() map[string]string {
	c := in.Trigger
	head := fmt.Sprintf("%s %s %s %s", c.Kind, c.ID, formatTagTime(c.At), c.Source)
	if c.RevokeFirst {
		head += " revoke-first"
	}
	if in.Writer != "" {
		head += " by:" + in.Writer
	}
	by := intentBy{Actor: clip(c.Actor, 80), OnBehalfOf: clip(c.OnBehalfOf, 40), OldKey: in.OldKey}
	if b, _ := json.Marshal(by); len(b) < intentByMax {
		by.Reason = clip(c.Reason, intentByMax-len(b))
	}
	b, _ := json.Marshal(by)
	return map[string]string{TagIntent: head, TagIntentBy: base64.StdEncoding.EncodeToString(b)}
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// intentFrom reads the intent kept in a secret's tags.
func intentFrom(tags map[string]string) (intent, bool) {
	f := strings.Fields(tags[TagIntent])
	if len(f) < 4 {
		return intent{}, false
	}
	at, err := parseTagTime(f[2])
	if err != nil {
		return intent{}, false
	}
	in := intent{Trigger: rotator.Trigger{Kind: events.Cause(f[0]), ID: f[1], At: at, Source: events.Source(f[3])}}
	for _, x := range f[4:] {
		switch {
		case x == "revoke-first":
			in.Trigger.RevokeFirst = true
		case strings.HasPrefix(x, "by:"):
			in.Writer = strings.TrimPrefix(x, "by:")
		}
	}
	if raw, err := base64.StdEncoding.DecodeString(tags[TagIntentBy]); err == nil {
		var by intentBy
		if json.Unmarshal(raw, &by) == nil {
			in.Trigger.Actor, in.Trigger.OnBehalfOf, in.Trigger.Reason, in.OldKey = by.Actor, by.OnBehalfOf, by.Reason, by.OldKey
		}
	}
	return in, in.Trigger.ID != ""
}

// intentHorizon bounds how long an intent stays open: past the longest
// grace and a day, its version may have been cleaned away by the store
// (Secrets Manager drops unlabelled versions beyond 100), and an emergency
// still not done has long been escalated.
const intentHorizon = 8 * 24 * time.Hour

// concurrentAsk is how far apart two asks of one kind for one secret may
// arrive and still be the same ask (one trigger delivered to several
// replicas): the later one is answered by the rotation the first made.
const concurrentAsk = 10 * time.Second

// intentDone is what TagIntentDone keeps.
type intentDone struct {
	ID string // the trigger carried out
	// Answer is the ask whose rotation carried it out (Kind, ID, At only),
	// and Finished when that rotation ended; zero when none did (it gave
	// up, or ended an old key without a rotation).
	Answer   rotator.Trigger
	Finished time.Time
}

func (d intentDone) tag() string {
	if d.Answer.ID == "" {
		return d.ID
	}
	return fmt.Sprintf("%s %s %s %s %s", d.ID, d.Answer.Kind, formatTagTime(d.Answer.At), d.Answer.ID, formatTagTime(d.Finished))
}

// doneFrom reads TagIntentDone (a bare trigger id, as older versions wrote
// it, names no answer).
func doneFrom(tags map[string]string) intentDone {
	f := strings.Fields(tags[TagIntentDone])
	if len(f) == 0 {
		return intentDone{}
	}
	d := intentDone{ID: f[0]}
	if len(f) == 5 {
		asked, err1 := parseTagTime(f[2])
		finished, err2 := parseTagTime(f[4])
		if err1 == nil && err2 == nil {
			d.Answer = rotator.Trigger{Kind: events.Cause(f[1]), At: asked, ID: f[3]}
			d.Finished = finished
		}
	}
	return d
}

// answers reports whether the finished rotation answers ask: the same ask
// made of several replicas (or by two people) at about the same moment, and
// no later than that rotation finished, is answered by the one rotation it
// made. An ask made once it had finished, be it a millisecond later, is a
// new ask. A compromise never is answered so: the exposed key may be the
// very one that rotation made.
//
// No allowance for clocks of replicas apart: synchronised clocks differ by
// milliseconds, while a rotation takes seconds (a create, a put, a test, a
// promote), so the same ask delivered to every replica is stamped well
// before the rotation finished on any clock. An allowance would only widen
// the moment in which a deliberate second ask is swallowed; a skew that
// misjudges an ask errs on the side of two rotations in sequence, which
// #12 allows. Times kept to the second by older versions are truncated
// alike (an ask before the finish is never after it), so they need none
// either.
func (d intentDone) answers(ask rotator.Trigger) bool {
	return d.Answer.ID != "" && d.Answer.Kind == ask.Kind && ask.Kind != events.CauseCompromise &&
		ask.Kind != events.CauseScheduled && !ask.At.After(d.Answer.At.Add(concurrentAsk)) &&
		!ask.At.After(d.Finished)
}

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
