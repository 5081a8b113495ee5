// Package inbound holds what the daemon's doors (the HTTP API, the
// security-event receivers, the Slack command) share: the bounded record of
// the requests they refuse. A flood of forged or unauthenticated requests
// must cost a few records, not one fsynced record each, while the metrics
// still count every one.
package inbound

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// Refusal is one request refused at a door. Every field is bounded: Code
// comes from a fixed set in the door's code, Reason and Actor are clipped,
// and of Remote only the address is kept. No path, body or header.
type Refusal struct {
	Door        events.Source // http, slack, lakiconnect_event
	Remote      string        // the request's RemoteAddr
	Code        string        // short fixed reason code: the metric label
	Reason      string        // for people
	Status      int           // the HTTP status answered
	Actor       string        // the verified principal, when there is one (a 403)
	Environment string
}

// Counter counts every refused request (the metrics).
type Counter interface {
	CountRefusal(door, code string)
}

// Defaults of RefusalsOptions.
const (
	DefaultRefusalWindow     = time.Minute
	DefaultRefusalMaxSources = 256
	maxReasonLen             = 200
	maxFieldLen              = 64
)

// RefusalsOptions configures Refusals.
type RefusalsOptions struct {
	Events  events.Sink
	Counter Counter
	Clock   clock.Clock
	// Logger, when set, gets a line per record; leave it out when Events
	// already logs every event.
	Logger *slog.Logger
	// Window is the summarising period (default one minute): one record per
	// door, source and code per window.
	Window time.Duration
	// MaxSources bounds the sources tracked at once; past it, new sources
	// share one "other" source, so many addresses cannot make many records.
	MaxSources int
}

// Refusals summarises refused requests: the first refusal of a door, source
// and code in a window is recorded (event and log line) at once; the rest
// are counted and recorded as one summary when the window ends.
type Refusals struct {
	o RefusalsOptions

	mu      sync.Mutex
	buckets map[refusalKey]*refusalBucket
}

type refusalKey struct {
	door   events.Source
	source string
	code   string
}

type refusalBucket struct {
	start, last time.Time
	more        int // refusals after the first, not yet recorded
	sample      Refusal
}

// NewRefusals returns a summariser; call Run to flush ended windows, and
// Flush at shutdown.
func NewRefusals(o RefusalsOptions) *Refusals {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = events.SinkFunc(func(context.Context, events.Event) {})
	}
	if o.Window <= 0 {
		o.Window = DefaultRefusalWindow
	}
	if o.MaxSources <= 0 {
		o.MaxSources = DefaultRefusalMaxSources
	}
	return &Refusals{o: o, buckets: map[refusalKey]*refusalBucket{}}
}

// Refuse counts r and records it if it is the first of its kind in the window.
func (s *Refusals) Refuse(ctx context.Context, r Refusal) {
	r = bounded(r)
	if s.o.Counter != nil {
		s.o.Counter.CountRefusal(string(r.Door), r.Code)
	}
	now := s.o.Clock.Now()
	s.mu.Lock()
	out := s.expired(now, false)
	k := refusalKey{door: r.Door, source: sourceOf(r.Remote), code: r.Code}
	if _, ok := s.buckets[k]; !ok && len(s.buckets) >= s.o.MaxSources {
		k.source = "other"
	}
	b, ok := s.buckets[k]
	if ok {
		b.more++
		b.last = now
	} else {
		s.buckets[k] = &refusalBucket{start: now, last: now, sample: r}
		out = append(out, s.record(k, r, now, now, 1, false))
	}
	s.mu.Unlock()
	s.emit(ctx, out)
}

// Flush records every pending summary now (at shutdown).
func (s *Refusals) Flush(ctx context.Context) {
	s.mu.Lock()
	out := s.expired(s.o.Clock.Now(), true)
	s.mu.Unlock()
	s.emit(ctx, out)
}

// Run records the summaries of ended windows until ctx ends, then flushes.
func (s *Refusals) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.Flush(context.WithoutCancel(ctx))
			return
		case <-s.o.Clock.After(s.o.Window):
			s.mu.Lock()
			out := s.expired(s.o.Clock.Now(), false)
			s.mu.Unlock()
			s.emit(ctx, out)
		}
	}
}

// expired removes the buckets whose window has ended (all with force) and
// returns the summaries they owe. Called with mu held.
func (s *Refusals) expired(now time.Time, force bool) []events.Event {
	var out []events.Event
	for k, b := range s.buckets {
		if !force && now.Sub(b.start) < s.o.Window {
			continue
		}
		if b.more > 0 {
			out = append(out, s.record(k, b.sample, b.start, b.last, b.more, true))
		}
		delete(s.buckets, k)
	}
	return out
}

func (s *Refusals) record(k refusalKey, r Refusal, from, to time.Time, count int, summary bool) events.Event {
	reason := r.Reason
	if summary {
		reason = fmt.Sprintf("%d more refused like this between %s and %s: %s", count, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), r.Reason)
	}
	return events.Event{
		Time: to, Step: events.StepAuth, Outcome: events.OutcomeRefused, Severity: events.SeverityWarning,
		Source: r.Door, Actor: r.Actor, Environment: r.Environment, Reason: reason,
		// The keys of the audit's refusal summaries: the stable code in
		// "reason" (as every alert keeps it), the sender in "source".
		Details: map[string]string{
			"reason": r.Code, "status": fmt.Sprint(r.Status), "source": k.source, "count": fmt.Sprint(count),
			"window_start": from.UTC().Format(time.RFC3339), "window_end": to.UTC().Format(time.RFC3339),
		},
	}
}

func (s *Refusals) emit(ctx context.Context, out []events.Event) {
	for _, e := range out {
		s.o.Logger.WarnContext(ctx, "requests refused", "door", e.Source, "reason_code", e.Details["reason"], "status", e.Details["status"],
			"source", e.Details["source"], "count", e.Details["count"], "actor", e.Actor, "reason", e.Reason)
		s.o.Events.Emit(ctx, e)
	}
}

// sourceOf keeps the address of a RemoteAddr, not its port (a flood from one
// host is one source).
func sourceOf(remote string) string {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().String()
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().String()
	}
	return "unknown"
}

func bounded(r Refusal) Refusal {
	r.Code = Clip(printable(r.Code), maxFieldLen)
	r.Reason = Clip(printable(r.Reason), maxReasonLen)
	r.Actor = Clip(printable(r.Actor), maxFieldLen)
	r.Environment = Clip(printable(r.Environment), maxFieldLen)
	return r
}

// printable replaces control characters (a forged event id may carry
// newlines or terminal escapes) with '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// Clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
