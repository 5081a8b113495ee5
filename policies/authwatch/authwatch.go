// Package authwatch is the 401/403 monitor. It polls LakiConnect's counts of
// refused requests (GET /security/auth_failures) per master merchant and
// environment, judges each key's count against its policy's thresholds over
// the policy's alert window, and raises at most one alert event per key and
// status per window: 401s on a retired key (a consumer left behind, or a
// leaked old key being tried), 403s on a current key (scopes narrower than
// the consumer needs), and 401s on a current key, which a policy may turn
// into a compromise rotation.
package authwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
)

// FailureSource counts refused requests of one master merchant and
// environment in [since, until); a zero until means up to now. The
// LakiConnect client satisfies it.
type FailureSource interface {
	ListAuthFailures(ctx context.Context, since, until time.Time) ([]laki.AuthFailureCount, error)
}

// Merchant is one master merchant to watch, with where its refused
// requests are counted.
type Merchant struct {
	laki.Merchant
	Failures FailureSource
}

// KeyState is where a key stands in its managed secret's life.
type KeyState string

const (
	// Current: the key in the secret's AWSCURRENT (or AWSPENDING) version.
	Current KeyState = "current"
	// Retired: a key the rotator replaced (AWSPREVIOUS, or ended).
	Retired KeyState = "retired"
)

// KeyInfo is what the daemon knows about a key id.
type KeyInfo struct {
	State  KeyState
	Secret string
	Kind   inventory.Kind
	Policy policies.Policy
}

// Keys tells the watcher what a LakiConnect key id is. ok is false for keys
// no managed secret has held.
type Keys interface {
	Lookup(env laki.Environment, merchantID, keyID string) (KeyInfo, bool)
}

// KeysFunc adapts a function to Keys.
type KeysFunc func(env laki.Environment, merchantID, keyID string) (KeyInfo, bool)

func (f KeysFunc) Lookup(env laki.Environment, merchantID, keyID string) (KeyInfo, bool) {
	return f(env, merchantID, keyID)
}

// RotateRequest asks for a compromise rotation after a 401 spike on a
// current key, for a policy with rotate_on_unauthorized_spike.
type RotateRequest struct {
	Secret           string
	KeyID            string
	Environment      laki.Environment
	MasterMerchantID string
	Cause            events.Cause
	Reason           string
	Count            int
	Window           time.Duration
}

// Alert reasons (Event.Reason of the events the watcher raises).
const (
	ReasonUnauthorizedRetired = "unauthorized_on_retired_key"
	ReasonUnauthorizedCurrent = "unauthorized_on_current_key"
	ReasonForbiddenCurrent    = "forbidden_on_current_key"
	ReasonForbiddenRetired    = "forbidden_on_retired_key"
	ReasonUnauthorizedUnknown = "unauthorized_on_unmanaged_key"
	ReasonForbiddenUnknown    = "forbidden_on_unmanaged_key"
	// Unattributed: keys LakiConnect does not know (key_id null), summed
	// per environment, merchant and status whatever their prefixes:
	// someone guessing, or a client with a mistyped key.
	ReasonUnauthorizedUnattributed = "unauthorized_unattributed"
	ReasonForbiddenUnattributed    = "forbidden_unattributed"
)

// Watcher polls the merchants and raises alert events.
type Watcher struct {
	Merchants []Merchant
	Keys      Keys
	// Policies supplies the alert windows to query; every policy's
	// Alerts.Window and Unmanaged.Window are polled.
	Policies *policies.Set
	// Unmanaged are the thresholds for refused requests of keys
	// LakiConnect knows but no managed secret holds. Zero thresholds turn
	// these alerts off.
	Unmanaged policies.Alerts
	// Unattributed are the thresholds for refused requests with keys
	// LakiConnect does not know (key_id null), counted together per
	// environment and merchant. Zero thresholds turn these alerts off.
	Unattributed policies.Alerts
	Clock        clock.Clock
	Sink         events.Sink
	// Rotate, if set, is called for a 401 spike on a current key whose
	// policy asks for it. It should enqueue, not run the rotation.
	Rotate func(ctx context.Context, r RotateRequest) error
	Logger *slog.Logger

	mu     sync.Mutex
	groups map[groupKey]*groupState
}

// groupKey is one key (or unknown key prefix) and status at one merchant.
type groupKey struct {
	env      laki.Environment
	merchant string
	key      string // key id, or "prefix:" + key prefix
	status   int
}

type groupState struct {
	lastAlert time.Time
	// baseline is the count seen in the group's window at the previous
	// poll; events carry it so that readers see the trend.
	baseline int
}

func (w *Watcher) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}

// windows returns the distinct alert windows to query, shortest first.
func (w *Watcher) windows() []time.Duration {
	var ws []time.Duration
	add := func(d time.Duration) {
		if d > 0 && !slices.Contains(ws, d) {
			ws = append(ws, d)
		}
	}
	if w.Policies != nil {
		for _, p := range w.Policies.All() {
			add(p.Alerts.Window)
		}
	}
	add(w.Unmanaged.Window)
	add(w.Unattributed.Window)
	slices.Sort(ws)
	return ws
}

// Poll queries every merchant once and raises the alerts that are due. It
// returns the errors of merchants that could not be read; the others are
// still judged.
func (w *Watcher) Poll(ctx context.Context) error {
	now := w.Clock.Now()
	var errs []error
	for _, t := range w.Merchants {
		for _, win := range w.windows() {
			// Open end: LakiConnect counts up to its own now, so a request
			// refused in the same second as the poll is not missed.
			rows, err := t.Failures.ListAuthFailures(ctx, now.Add(-win), time.Time{})
			if err != nil {
				errs = append(errs, fmt.Errorf("auth failures of %s/%s over %s: %w", t.Environment, t.MasterMerchantID, win, err))
				break
			}
			w.judge(ctx, t, win, rows, now)
		}
	}
	return errors.Join(errs...)
}

// Run polls every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) error {
	for {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.logger().WarnContext(ctx, "auth failure poll failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.Clock.After(interval):
		}
	}
}

// judge handles the rows of one query window: each row is judged only in the
// query whose window is its own policy's.
func (w *Watcher) judge(ctx context.Context, t Merchant, win time.Duration, rows []laki.AuthFailureCount, now time.Time) {
	// LakiConnect groups by key and status; sum defensively in case a key
	// appears twice (for example split by prefix).
	type agg struct {
		info     KeyInfo
		managed  bool
		keyID    string
		prefix   string
		count    int
		prefixes map[string]int // unattributed: count per presented key prefix
	}
	sums := map[groupKey]*agg{}
	var order []groupKey
	for _, r := range rows {
		if r.StatusCode != 401 && r.StatusCode != 403 {
			continue
		}
		g := groupKey{env: t.Environment, merchant: t.MasterMerchantID, status: r.StatusCode}
		a := &agg{prefix: r.KeyPrefix}
		if r.KeyID != nil && *r.KeyID != "" {
			g.key, a.keyID = *r.KeyID, *r.KeyID
			if w.Keys != nil {
				a.info, a.managed = w.Keys.Lookup(t.Environment, t.MasterMerchantID, *r.KeyID)
			}
		} else {
			g.key = unattributed
		}
		alerts := w.thresholdsOf(g, a.managed, a.info)
		if alerts.Window != win {
			continue
		}
		if prev, ok := sums[g]; ok {
			prev.count += r.Count
			if prev.prefixes != nil {
				prev.prefixes[r.KeyPrefix] += r.Count
			}
			continue
		}
		a.count = r.Count
		if g.key == unattributed {
			a.prefixes = map[string]int{r.KeyPrefix: r.Count}
		}
		sums[g] = a
		order = append(order, g)
	}

	for _, g := range order {
		a := sums[g]
		alerts := w.thresholdsOf(g, a.managed, a.info)
		threshold := alerts.Forbidden403
		if g.status == 401 {
			threshold = alerts.Unauthorized401
		}
		w.mu.Lock()
		if w.groups == nil {
			w.groups = map[groupKey]*groupState{}
		}
		st := w.groups[g]
		if st == nil {
			st = &groupState{}
			w.groups[g] = st
		}
		baseline := st.baseline
		st.baseline = a.count
		due := threshold > 0 && a.count >= threshold && (st.lastAlert.IsZero() || now.Sub(st.lastAlert) >= win)
		if due {
			st.lastAlert = now
		}
		w.mu.Unlock()
		if !due {
			continue
		}
		w.alert(ctx, g, a.info, a.managed, a.keyID, a.prefixes, a.count, threshold, baseline, win, now)
	}
}

// unattributed is the group key of refused requests with keys LakiConnect
// does not know.
const unattributed = "unattributed"

// thresholdsOf gives the alert thresholds of a group: its policy's for a
// managed key, else the unattributed or unmanaged ones.
func (w *Watcher) thresholdsOf(g groupKey, managed bool, info KeyInfo) policies.Alerts {
	switch {
	case managed:
		return info.Policy.Alerts
	case g.key == unattributed:
		return w.Unattributed
	default:
		return w.Unmanaged
	}
}

func (w *Watcher) alert(ctx context.Context, g groupKey, info KeyInfo, managed bool, keyID string, prefixes map[string]int,
	count, threshold, baseline int, win time.Duration, now time.Time) {
	e := events.Event{
		Time: now, Step: events.StepAlert, Outcome: events.OutcomeWarning, Severity: events.SeverityWarning,
		Environment: string(g.env), MasterMerchantID: g.merchant, KeyID: keyID, Source: events.SourcePolicyScan,
		Details: map[string]string{
			"status_code":    strconv.Itoa(g.status),
			"count":          strconv.Itoa(count),
			"threshold":      strconv.Itoa(threshold),
			"window":         win.String(),
			"previous_count": strconv.Itoa(baseline),
		},
	}
	code := ReasonForbiddenCurrent
	switch {
	case g.key == unattributed && g.status == 401:
		code = ReasonUnauthorizedUnattributed
	case g.key == unattributed:
		code = ReasonForbiddenUnattributed
	case !managed && g.status == 401:
		code = ReasonUnauthorizedUnknown
	case !managed:
		code = ReasonForbiddenUnknown
	case g.status == 401 && info.State == Retired:
		code = ReasonUnauthorizedRetired
	case g.status == 401:
		code, e.Severity = ReasonUnauthorizedCurrent, events.SeverityCritical
	case info.State == Retired:
		code = ReasonForbiddenRetired
	}
	// The stable code is in Details["reason"], where every alert keeps it
	// (logs show it as reason_code, metrics label by it); Reason is for people.
	e.Details["reason"] = code
	if managed {
		e.Secret, e.Kind = info.Secret, string(info.Kind)
		e.Details["policy"] = info.Policy.Name
		e.Details["key_state"] = string(info.State)
	}
	if prefixes != nil {
		// A prefix is 12 characters of a presented key: of a real key that
		// is its lk_live_/lk_test_ marker and 4 characters, not the secret.
		top, _ := topPrefix(prefixes)
		e.Details["key_prefix"], e.Details["key_prefixes"] = top, strconv.Itoa(len(prefixes))
	}
	e.Reason = sentence(g, info, managed, keyID, prefixes, count, threshold, baseline, win)

	if managed && code == ReasonUnauthorizedCurrent && info.Policy.Alerts.RotateOnUnauthorizedSpike && w.Rotate != nil {
		req := RotateRequest{
			Secret: info.Secret, KeyID: keyID, Environment: g.env, MasterMerchantID: g.merchant,
			Cause: events.CauseCompromise, Reason: code, Count: count, Window: win,
		}
		e.Cause = events.CauseCompromise
		if err := w.Rotate(ctx, req); err != nil {
			e.Details["rotation"] = "request failed"
			e.Error = "compromise rotation request failed: " + err.Error()
			w.logger().ErrorContext(ctx, "compromise rotation request failed", "secret", info.Secret, "key_id", keyID, "error", err)
		} else {
			e.Details["rotation"] = "requested"
			e.Reason += " A compromise rotation of " + info.Secret + " was requested."
		}
	}
	w.Sink.Emit(ctx, e)
}
