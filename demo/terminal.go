package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
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

// exposeLater has the simulator report a key exposed, as LakiConnect's
// secret scanning would, so the demo shows a compromise rotation.
func exposeLater(ctx context.Context, o Options, sim *lakisim.Simulator, name string) {
	select {
	case <-ctx.Done():
		return
	case <-o.Clock.After(o.ExposeAfter):
	}
	// Read the store file afresh: the daemon has its own handle and has
	// rotated the key since seeding; the seed's handle holds only what it wrote.
	fresh, err := localstore.Open(filepath.Join(o.Dir, "store.json"))
	if err != nil {
		return
	}
	v, err := fresh.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		return
	}
	c, err := secretstore.DecodeCredential(name, v.Value)
	if err != nil {
		return
	}
	if _, err := sim.ExposeKey(c.KeyID, "public_repository", "https://code.example/someone/leaky-repo"); err == nil {
		fmt.Fprintf(o.Out, "\n>>> LakiConnect reports key %s of %s exposed in a public repository: watch the compromise rotation.\n\n", c.KeyID, name)
	}
}

func printBanner(w io.Writer, o Options, apiURL string, managed int) {
	fmt.Fprintf(w, `lakirotator demo
  LakiConnect simulator in-process, local store in %s
  %d managed secrets in sandbox and production (%d application credentials and the rotator's %d management keys), rotated %s (grace %s)
  API %s

From a second terminal:
  go run ./cmd/lakirotator status --demo
  go run ./cmd/lakirotator trigger --demo --owner alice --reason "alice left the team" --yes
  go run ./cmd/lakirotator rotate --demo demo/sandbox/reporting --reason "testing"
  go run ./cmd/lakirotator audit verify %s

Stop it with Ctrl-C (or SIGTERM). Each start begins afresh: new keys and a new audit trail.

`, o.Dir, managed, len(seeds()), managed-len(seeds()), o.Schedule, o.Grace, apiURL, filepath.Join(o.Dir, "audit.jsonl"))
	if o.ExposeAfter > 0 {
		fmt.Fprintf(w, "In %s the simulator will report a production key exposed.\n\n", o.ExposeAfter)
	}
}
