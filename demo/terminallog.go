package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// terminalLog is the demo's log handler. Lifecycle events already reach
// the terminal as notification lines, so their log records ("lifecycle
// event") are left out; every other warning or error is printed in the
// same shape as a notification line, without empty fields.
type terminalLog struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Level
	attrs []slog.Attr
}

func newTerminalLog(w io.Writer, level slog.Level) *terminalLog {
	return &terminalLog{mu: &sync.Mutex{}, w: w, level: level}
}

func (h *terminalLog) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *terminalLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "lifecycle event" {
		return nil
	}
	var b strings.Builder
	if !r.Time.IsZero() {
		b.WriteString(r.Time.UTC().Format(time.RFC3339))
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%-8s %s", r.Level.String(), r.Message)
	add := func(a slog.Attr) bool {
		v := a.Value.Resolve().String()
		if v == "" || a.Key == "" {
			return true
		}
		if strings.ContainsAny(v, " \"=") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(" " + a.Key + "=" + v)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *terminalLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup flattens groups: the demo's loggers use none.
func (h *terminalLog) WithGroup(string) slog.Handler { return h }
