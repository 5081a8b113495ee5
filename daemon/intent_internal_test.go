package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/rotator"
)

// The intent tags keep the ask and finish times to the millisecond, read
// back exactly, and stay well within a tag value (256 characters) with the
// longest trigger id the daemon keeps (a security event's) and the longest
// kind, source and writer.
func TestIntentTagsKeepMillisecondsWithinATagValue(t *testing.T) {
	asked := time.Date(2026, 12, 1, 7, 30, 44, 123_000_000, time.UTC)
	finished := asked.Add(2*time.Second + 7*time.Millisecond)
	longest := "evt:evt_" + strings.Repeat("Z", 24) // LakiConnect event ids: evt_ and 24 characters
	in := intent{Trigger: rotator.Trigger{Kind: events.CauseCompromise, ID: longest, At: asked, Source: events.SourceLakiEvent, RevokeFirst: true},
		Writer: newInstanceID()}
	tags := in.tags()
	done := intentDone{ID: longest, Answer: rotator.Trigger{Kind: events.CauseCompromise, ID: longest, At: asked}, Finished: finished}
	tags[TagIntentDone] = done.tag()
	for _, k := range []string{TagIntent, TagIntentDone} {
		if n := len(tags[k]); n > 160 {
			t.Errorf("%s is %d characters (%q), want well under 256", k, n, tags[k])
		}
	}
	got, ok := intentFrom(tags)
	if !ok || !got.Trigger.At.Equal(asked) || got.Trigger.ID != longest || !got.Trigger.RevokeFirst || got.Writer != in.Writer {
		t.Errorf("intent read back as %+v (ok %v), want asked at %s", got, ok, asked)
	}
	back := doneFrom(tags)
	if !back.Answer.At.Equal(asked) || !back.Finished.Equal(finished) || back.Answer.ID != longest || back.ID != longest {
		t.Errorf("intent-done read back as %+v, want asked %s, finished %s", back, asked, finished)
	}
}

// Tags written by older versions, with times in unix seconds, are still read.
func TestIntentTagsInUnixSecondsAreStillRead(t *testing.T) {
	tags := map[string]string{
		TagIntent:     "manual trg_1 1780300800 http by:abc",
		TagIntentDone: "trg_0 manual 1780300790 trg_0 1780300795",
	}
	in, ok := intentFrom(tags)
	if !ok || !in.Trigger.At.Equal(time.Unix(1780300800, 0)) || in.Writer != "abc" {
		t.Errorf("old intent read as %+v (ok %v)", in, ok)
	}
	d := doneFrom(tags)
	if !d.Answer.At.Equal(time.Unix(1780300790, 0)) || !d.Finished.Equal(time.Unix(1780300795, 0)) || d.Answer.ID != "trg_0" {
		t.Errorf("old intent-done read as %+v", d)
	}
}

// A finished rotation answers the same ask made no later than it finished,
// and never one made after, be it by a millisecond.
func TestAskAfterTheRotationFinishedIsNotAnsweredByIt(t *testing.T) {
	asked := time.Date(2026, 12, 1, 7, 30, 44, 123_000_000, time.UTC)
	finished := asked.Add(1500 * time.Millisecond)
	done := intentDone{ID: "trg_a", Answer: rotator.Trigger{Kind: events.CauseManual, ID: "trg_a", At: asked}, Finished: finished}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{asked, true},
		{finished.Add(-time.Millisecond), true},
		{finished, true},
		{finished.Add(time.Millisecond), false},
		{finished.Add(3 * time.Millisecond), false},
	} {
		if got := done.answers(rotator.Trigger{Kind: events.CauseManual, ID: "trg_b", At: c.at}); got != c.want {
			t.Errorf("ask at finish%+v: answered %v, want %v", c.at.Sub(finished), got, c.want)
		}
	}
}
