package daemon

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakirotator/lakirotator/events"
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
