package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

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

// Writer turns events into audit records on every sink. It implements
// events.Sink; a sink that fails is logged and counted, never passed back to
// the step that emitted the event.
type Writer struct {
	clock  clock.Clock
	logger *slog.Logger
	sinks  []Sink
	failed atomic.Uint64
}

// NewWriter returns a Writer over sinks. A nil logger logs nowhere.
func NewWriter(c clock.Clock, logger *slog.Logger, sinks ...Sink) *Writer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{clock: c, logger: logger, sinks: sinks}
}

// Emit appends one record for e to every sink.
func (w *Writer) Emit(ctx context.Context, e events.Event) {
	if err := w.Append(ctx, e); err != nil {
		w.logger.ErrorContext(ctx, "audit record not written",
			"step", e.Step, "outcome", e.Outcome, "secret", e.Secret, "error", err)
	}
}

// Append is Emit that reports failures, for callers that must know the
// record is on disk (a CLI that exits after one action).
func (w *Writer) Append(ctx context.Context, e events.Event) error {
	at := w.clock.Now()
	if e.Time.IsZero() {
		e.Time = at
	}
	var errs []error
	for _, s := range w.sinks {
		err := s.Append(ctx, func(h Head) ([]byte, error) {
			line, _, err := encodeRecord(h, at, e)
			return line, err
		})
		if err != nil {
			w.failed.Add(1)
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit: %d of %d sinks failed: %w", len(errs), len(w.sinks), errs[0])
	}
	return nil
}

// Failures counts sink writes that failed since the Writer was made.
func (w *Writer) Failures() uint64 { return w.failed.Load() }

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
