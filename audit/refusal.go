package audit

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lakirotator/lakirotator/events"
)

// MaxRefusalField bounds every text field of a refusal summary, so that a
// flood of refused requests with long paths or forged headers cannot grow
// the audit trail by more than a few hundred bytes per summary.
const MaxRefusalField = 128

// RefusalSummary is one audit record for many refused requests: per
// source, per reason, per window (for example one per source per minute).
// The inbound doors count refusals and emit Event() on the bus at the end
// of each window; the audit writer records it like any other event.
type RefusalSummary struct {
	Door   events.Source // http, slack, lakiconnect_event
	Source string        // who sent them: a client address or prefix, never a header value
	Reason string        // a stable reason code: bad_token, bad_signature, not_found, ...
	Count  int
	From   time.Time // the window
	To     time.Time
	// Example is one sanitised sample (a route, not a raw path); optional.
	Example string
}

// Event is the summary as a lifecycle event with bounded, sanitised fields.
func (r RefusalSummary) Event() events.Event {
	d := map[string]string{
		"reason":       bounded(r.Reason),
		"source":       bounded(r.Source),
		"count":        strconv.Itoa(r.Count),
		"window_start": r.From.UTC().Format(time.RFC3339),
		"window_end":   r.To.UTC().Format(time.RFC3339),
	}
	if r.Example != "" {
		d["example"] = bounded(r.Example)
	}
	return events.Event{
		Time: r.To, Step: events.StepAuth, Outcome: events.OutcomeRefused, Severity: events.SeverityWarning,
		Source: r.Door, Reason: bounded(r.Reason), Details: d,
	}
}

// bounded keeps printable characters only and cuts at MaxRefusalField bytes.
func bounded(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > MaxRefusalField {
		cut := MaxRefusalField
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
