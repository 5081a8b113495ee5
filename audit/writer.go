package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// Sink stores record lines. Each sink keeps its own chain: Append finds the
// sink's current head (a file reads its last line under a lock, so that two
// processes appending to one file keep one chain), asks next for the line
// that follows it, and writes that line durably before returning. A remote
// sink implements the same with a conditional write.
type Sink interface {
	Append(ctx context.Context, next func(Head) ([]byte, error)) error
}

// ErrUnavailable is returned (wrapped) while no sink can write: the audit is
// failing closed.
var ErrUnavailable = errors.New("audit: no audit sink can write")

// DefaultMaxQueued is how many records a failing sink keeps in memory to
// write once it recovers.
const DefaultMaxQueued = 10000

// Observer hears about the Writer's health (metrics, alerts). Either
// function may be nil. They are called without the Writer's lock held.
type Observer struct {
	// WriteFailed is called once per failed write to a sink.
	WriteFailed func(err error)
	// WritableChanged is called when the audit turns unwritable (err says
	// why) or writable again (err is nil).
	WritableChanged func(writable bool, err error)
}

// Writer turns events into audit records on every sink. It implements
// events.Sink. A record a sink cannot take is queued in memory, in order,
// and written when the sink recovers (on the next record or on Retry), so
// freeing disk space is enough to recover. While no sink can write,
// Writable reports false: callers that must not act unrecorded (the
// daemon's rotation gate, readiness) check it.
type Writer struct {
	clock     clock.Clock
	logger    *slog.Logger
	sinks     []*sinkState
	maxQueued int
	observer  Observer

	mu       sync.Mutex // serialises appends, so queued records keep their order
	writable atomic.Bool
	failed   atomic.Uint64

	waitMu   sync.Mutex
	reopened chan struct{} // closed when the audit turns writable again
}

type queuedRecord struct {
	at time.Time
	e  events.Event
}

type sinkState struct {
	sink    Sink
	queue   []queuedRecord
	dropped int       // records that did not fit in the queue
	since   time.Time // when the current failure began
	lastErr error
}

func (s *sinkState) healthy() bool { return s.lastErr == nil && len(s.queue) == 0 }

// NewWriter returns a Writer over sinks. A nil logger logs nowhere.
func NewWriter(c clock.Clock, logger *slog.Logger, sinks ...Sink) *Writer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{clock: c, logger: logger, maxQueued: DefaultMaxQueued}
	for _, s := range sinks {
		w.sinks = append(w.sinks, &sinkState{sink: s})
	}
	w.writable.Store(true)
	w.reopened = make(chan struct{})
	return w
}

// Observe sets the observer; call it before the Writer is used.
func (w *Writer) Observe(o Observer) *Writer {
	w.observer = o
	return w
}

// SetMaxQueued bounds the per-sink queue of records waiting for recovery.
func (w *Writer) SetMaxQueued(n int) *Writer {
	if n > 0 {
		w.maxQueued = n
	}
	return w
}

// Emit appends one record for e to every sink.
func (w *Writer) Emit(ctx context.Context, e events.Event) {
	if err := w.Append(ctx, e); err != nil {
		w.logger.ErrorContext(ctx, "audit record not written yet (queued until a sink recovers)",
			"step", e.Step, "outcome", e.Outcome, "secret", e.Secret, "error", err)
	}
}

// Append is Emit that reports failures, for callers that must know the
// record is on disk (a CLI that exits after one action). A record that a
// sink could not take stays queued for it.
func (w *Writer) Append(ctx context.Context, e events.Event) error {
	at := w.clock.Now()
	if e.Time.IsZero() {
		e.Time = at
	}
	return w.write(ctx, &queuedRecord{at: at, e: e})
}

// Retry writes the records queued for failing sinks; the daemon calls it on
// an interval so that recovery needs no new event.
func (w *Writer) Retry(ctx context.Context) error { return w.write(ctx, nil) }

// Run calls Retry every interval while any sink is behind, until ctx ends.
func (w *Writer) Run(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.clock.After(every):
			if !w.Writable() || w.Queued() > 0 {
				_ = w.Retry(ctx)
			}
		}
	}
}

func (w *Writer) write(ctx context.Context, rec *queuedRecord) error {
	w.mu.Lock()
	var errs, failures []error
	for _, s := range w.sinks {
		if err := w.drain(ctx, s); err != nil {
			failures = append(failures, err)
		}
		if rec == nil {
			if s.lastErr != nil {
				errs = append(errs, s.lastErr)
			}
			continue
		}
		if len(s.queue) > 0 || s.lastErr != nil {
			w.enqueue(s, *rec)
			errs = append(errs, s.lastErr)
			continue
		}
		if err := s.sink.Append(ctx, lineFor(rec.at, rec.e)); err != nil {
			failures = append(failures, err)
			s.lastErr, s.since = err, w.clock.Now()
			w.enqueue(s, *rec)
			errs = append(errs, err)
		}
	}
	writable := len(w.sinks) == 0
	for _, s := range w.sinks {
		writable = writable || s.healthy()
	}
	changed := w.writable.Swap(writable) != writable
	if changed && writable {
		w.waitMu.Lock()
		close(w.reopened)
		w.reopened = make(chan struct{})
		w.waitMu.Unlock()
	}
	w.mu.Unlock()

	for _, err := range failures {
		w.failed.Add(1)
		if w.observer.WriteFailed != nil {
			w.observer.WriteFailed(err)
		}
	}
	var first error
	if len(errs) > 0 {
		first = errs[0]
	}
	if changed {
		if writable {
			w.logger.WarnContext(ctx, "audit writable again")
		} else {
			w.logger.ErrorContext(ctx, "no audit sink can write: rotations other than compromise pause", "error", first)
		}
		if w.observer.WritableChanged != nil {
			w.observer.WritableChanged(writable, first)
		}
	}
	if len(errs) > 0 {
		if !writable {
			return fmt.Errorf("%w: %d of %d sinks failed: %w", ErrUnavailable, len(errs), len(w.sinks), first)
		}
		return fmt.Errorf("audit: %d of %d sinks failed: %w", len(errs), len(w.sinks), first)
	}
	return nil
}

// drain writes s's queued records in order, then a record saying the sink
// recovered. It stops at the first failure.
func (w *Writer) drain(ctx context.Context, s *sinkState) error {
	if s.lastErr == nil && len(s.queue) == 0 {
		return nil
	}
	for len(s.queue) > 0 {
		q := s.queue[0]
		if err := s.sink.Append(ctx, lineFor(q.at, q.e)); err != nil {
			s.lastErr = err
			return err
		}
		s.queue = s.queue[1:]
	}
	now := w.clock.Now()
	note := events.Event{
		Time: now, Step: events.StepAudit, Outcome: events.OutcomeWarning, Severity: events.SeverityWarning,
		Reason: "the audit sink failed and recovered; the records queued meanwhile were written above, with their original event times",
		Details: map[string]string{
			"reason": "audit_recovered", "failed_since": s.since.UTC().Format(time.RFC3339Nano),
			"records_lost": strconv.Itoa(s.dropped), "error": truncate(errString(s.lastErr), 200),
		},
	}
	if err := s.sink.Append(ctx, lineFor(now, note)); err != nil {
		s.lastErr = err
		return err
	}
	s.lastErr, s.dropped, s.queue = nil, 0, nil
	return nil
}

func (w *Writer) enqueue(s *sinkState, r queuedRecord) {
	if len(s.queue) >= w.maxQueued {
		s.dropped++
		return
	}
	s.queue = append(s.queue, r)
}

func lineFor(at time.Time, e events.Event) func(Head) ([]byte, error) {
	return func(h Head) ([]byte, error) {
		line, _, err := encodeRecord(h, at, e)
		return line, err
	}
}

// Writable reports whether at least one sink is writing (Vault's rule: a
// request proceeds if any audit device took its record).
func (w *Writer) Writable() bool { return w.writable.Load() }

// WaitWritable returns nil once the audit is writable, or ctx's error.
func (w *Writer) WaitWritable(ctx context.Context) error {
	for {
		w.waitMu.Lock()
		ch := w.reopened
		w.waitMu.Unlock()
		if w.Writable() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Check is the readiness check: an error while no sink can write.
func (w *Writer) Check(context.Context) error {
	if w.Writable() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.sinks {
		if s.lastErr != nil {
			return fmt.Errorf("%w (%d records queued): %w", ErrUnavailable, len(s.queue), s.lastErr)
		}
	}
	return ErrUnavailable
}

// Queued is the number of records waiting for a failing sink.
func (w *Writer) Queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.sinks {
		n += len(s.queue)
	}
	return n
}

// Failures counts sink writes that failed since the Writer was made.
func (w *Writer) Failures() uint64 { return w.failed.Load() }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// StreamSink writes the chain to an io.Writer (stdout, a pipe), keeping the
// head in memory: it starts a new chain each time the process starts.
type StreamSink struct {
	mu   sync.Mutex
	w    io.Writer
	head Head
}

// NewStreamSink returns a sink writing one line per record to w.
func NewStreamSink(w io.Writer) *StreamSink { return &StreamSink{w: w} }

func (s *StreamSink) Append(_ context.Context, next func(Head) ([]byte, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	line, err := next(s.head)
	if err != nil {
		return err
	}
	h, err := decodeHead(line)
	if err != nil {
		return fmt.Errorf("audit: stream sink: %w", err)
	}
	if _, err := s.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: stream sink: %w", err)
	}
	s.head = h
	return nil
}
