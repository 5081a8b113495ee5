// What the benchmark measures with: event durations, calls per route,
// operation timings, the Secrets Manager write rate, process memory.

package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
)

func isThrottle(code string) bool {
	return code == "ThrottlingException" || code == "TooManyRequestsException" || code == "RequestLimitExceeded"
}

func sumThrottles(m map[string]int) int {
	n := 0
	for k, v := range m {
		if _, code, _ := strings.Cut(k, "/"); isThrottle(code) {
			n += v
		}
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// durationSink keeps the duration of every successful rotation, nothing else
// (memory stays flat in N: 8 bytes a rotation).
type durationSink struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *durationSink) Emit(_ context.Context, ev events.Event) {
	if ev.Step != events.StepRotation || ev.Outcome != events.OutcomeSucceeded {
		return
	}
	s.mu.Lock()
	s.d = append(s.d, ev.Duration)
	s.mu.Unlock()
}

func (s *durationSink) percentile(p float64) float64 {
	s.mu.Lock()
	d := append([]time.Duration(nil), s.d...)
	s.mu.Unlock()
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(p*float64(len(d))+0.5) - 1
	return ms(d[min(max(i, 0), len(d)-1)])
}

// routeCounter counts LakiConnect requests by method and route template.
type routeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func newRouteCounter() *routeCounter { return &routeCounter{n: map[string]int{}} }

func (c *routeCounter) observe(method, path string, status int, _ error) {
	result := "ok"
	if status == 429 {
		result = "429"
	}
	c.mu.Lock()
	c.n[method+" "+path+" "+result]++
	c.mu.Unlock()
}

func (c *routeCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// opTiming sums the time of Secrets Manager calls per operation.
type opTiming struct {
	mu  sync.Mutex
	sum map[string]time.Duration
	n   map[string]int
}

func newOpTiming() *opTiming { return &opTiming{sum: map[string]time.Duration{}, n: map[string]int{}} }

func (t *opTiming) observe(op, _ string, d time.Duration) {
	t.mu.Lock()
	t.sum[op] += d
	t.n[op]++
	t.mu.Unlock()
}

func (t *opTiming) means() map[string]float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]float64{}
	for op, s := range t.sum {
		out[op] = ms(s) / float64(t.n[op])
	}
	return out
}

// writeMeter samples the write count each second for the peak write rate.
type writeMeter struct {
	c    *secretsmanager.CallCounter
	mu   sync.Mutex
	best int
}

func newWriteMeter(c *secretsmanager.CallCounter) *writeMeter { return &writeMeter{c: c} }

func (w *writeMeter) start() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := w.c.Writes()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := w.c.Writes()
				w.mu.Lock()
				w.best = max(w.best, n-last)
				w.mu.Unlock()
				last = n
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (w *writeMeter) peak() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return float64(w.best)
}

// procStatusMB reads a kB field (VmRSS, VmHWM) of /proc/<pid>/status in MB;
// 0 where /proc is missing.
func procStatusMB(pid, field string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
