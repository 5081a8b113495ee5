package rotator_test

import (
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/rotator"
)

// The engine gives the grace the policy decided, for every cause alike; it
// only caps it at LakiConnect's limit and fills in a missing cause.
func TestEngineGivesThePolicysGrace(t *testing.T) {
	p := rotator.RotationPolicy{DefaultGrace: 24 * time.Hour, Grace: map[events.Cause]time.Duration{
		events.CauseCompromise: 0, events.CausePersonnel: time.Hour, events.CauseManual: 30 * 24 * time.Hour,
	}}
	for cause, want := range map[events.Cause]time.Duration{
		events.CauseCompromise: 0, events.CausePersonnel: time.Hour, events.CauseScheduled: 24 * time.Hour, events.CauseManual: 7 * 24 * time.Hour,
	} {
		if got := p.GraceFor(cause); got != want {
			t.Errorf("%s: grace %v, want %v", cause, got, want)
		}
	}
}
