// Package terminal prints one human-readable line per notification, for the
// demo and for running the CLI by hand.
package terminal

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/notify"
)

// Notifier writes notifications to an io.Writer.
type Notifier struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Notifier writing to w.
func New(w io.Writer) *Notifier { return &Notifier{w: w} }

// Notify writes one line (and one indented line per digest item). A write
// error is not worth retrying: the terminal is gone.
func (t *Notifier) Notify(_ context.Context, n notify.Notification) (bool, error) {
	var b strings.Builder
	b.WriteString(Line(n))
	for _, item := range n.Digest {
		b.WriteString("\n    ")
		b.WriteString(Line(item))
	}
	b.WriteByte('\n')
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return false, fmt.Errorf("terminal: %w", err)
	}
	return false, nil
}

// Line renders n as one line: time, severity, title, then the facts that are set.
func Line(n notify.Notification) string {
	parts := []string{}
	if !n.Time.IsZero() {
		parts = append(parts, n.Time.UTC().Format(time.RFC3339))
	}
	sev := strings.ToUpper(string(n.Severity))
	if sev == "" {
		sev = "INFO"
	}
	parts = append(parts, fmt.Sprintf("%-8s", sev), n.Title)
	kv := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+oneLine(v))
		}
	}
	kv("env", n.Environment)
	kv("merchant", n.MasterMerchantID)
	kv("key", n.KeyID)
	kv("previous_key", n.PreviousKeyID)
	kv("cause", string(n.Cause))
	kv("by", n.Actor)
	kv("via", string(n.Source))
	if n.Duration > 0 {
		kv("took", n.Duration.Round(time.Millisecond).String())
	}
	kv("reason", n.Reason)
	kv("error", n.Error)
	kv("mention", n.Mention)
	kv("next", n.NextSteps)
	return strings.Join(parts, " ")
}

// oneLine keeps a value on one line and quotes it when it has spaces.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if strings.ContainsAny(s, " \"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
