package e2e

// The chaos test: `lakirotator serve` killed with SIGKILL at random
// instants (not only between steps) during a mixed batch, a compromise and
// a personnel trigger, with LakiConnect latency injected so that kills land
// mid-call; restarted; converged; and held to the invariants of issue 12
// at LakiConnect and in Secrets Manager.
//
// E2E_CHAOS_SEED reruns a seed; E2E_CHAOS_ROUNDS runs that many rounds
// (default: as many as fit in E2E_CHAOS_BUDGET, default 150s, at least 6).
// Secrets Manager writes are held back too (a proxy), so kills also land
// inside a put or a promote.

import (
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
)

type chaosKind string

const (
	chaosBatch      chaosKind = "batch"      // manual, every secret: API keys and webhook secrets, sandbox and production
	chaosCompromise chaosKind = "compromise" // api_key.exposed from LakiConnect
	chaosPersonnel  chaosKind = "personnel"  // an owner left: a mixed subset
)

// chaosStats is what the test log reports at the end.
type chaosStats struct {
	rounds      map[chaosKind]int
	kills       int
	killPoints  map[string]int // last step/outcome of each asked secret at the kill
	midCall     map[string]int // LakiConnect calls cut off by a kill
	failedRound []int
}

type chaos struct {
	f     *fleet
	r     *replica
	rng   *rand.Rand
	seed  int64
	stats chaosStats
	// smWrites delays the daemon's Secrets Manager writes.
	smWrites *delayProxy
	// errs counts the failures reported in the current round.
	errs int
}

// fail reports one broken invariant of the round.
func (c *chaos) fail(t *testing.T, label, format string, args ...any) {
	t.Helper()
	c.errs++
	t.Errorf(label+": "+format, args...)
}

func envInt(t *testing.T, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q is not an integer", name, v)
	}
	return n
}

func TestChaosKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: starts moto, lakisim and the daemon many times")
	}
	seed := envInt(t, "E2E_CHAOS_SEED", time.Now().UnixNano())
	rounds := int(envInt(t, "E2E_CHAOS_ROUNDS", 0))
	budget := 150 * time.Second
	if v := os.Getenv("E2E_CHAOS_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("E2E_CHAOS_BUDGET=%q is not a duration", v)
		}
		budget = d
	}
	t.Logf("chaos seed %d (rerun with E2E_CHAOS_SEED=%d)", seed, seed)

	// The daemon reaches moto through a proxy that holds back its writes,
	// so that kills land inside the put and the promote too.
	smWrites := &delayProxy{}
	f := newFleet(t, fleetOptions{replicas: 1, awsProxy: map[int]*delayProxy{0: smWrites}})
	c := &chaos{f: f, r: f.replicas[0], smWrites: smWrites, rng: rand.New(rand.NewSource(seed)), seed: seed, stats: chaosStats{
		rounds: map[chaosKind]int{}, killPoints: map[string]int{}, midCall: map[string]int{},
	}}
	f.start(c.r, true)
	defer func() {
		if t.Failed() {
			t.Log(f.tail(c.r))
		}
		c.report(t)
	}()

	kinds := []chaosKind{chaosBatch, chaosCompromise, chaosPersonnel}
	start := time.Now()
	for n := 1; ; n++ {
		if rounds > 0 && n > rounds {
			break
		}
		if rounds == 0 && n > len(kinds)*2 && time.Since(start) > budget {
			break
		}
		if len(c.stats.failedRound) >= 3 {
			t.Logf("stopping after %d failing rounds: later rounds would start from a broken state", len(c.stats.failedRound))
			break
		}
		c.round(t, n, kinds[(n-1)%len(kinds)], true)
	}
	// A last round without a kill: every secret, every webhook endpoint
	// included, rotates at its next turn.
	if len(c.stats.failedRound) < 3 {
		c.round(t, 0, chaosBatch, false)
	}
}

// ask is what one round asked for and what the outcome must show.
type ask struct {
	kind      chaosKind
	targets   []fleetSecret
	triggerID string // "" for a compromise: the receiver makes it from the event
	requester string
	exposed   string // key id (compromise)
	eventID   string // the api_key.exposed event (compromise)
	at        time.Time
}

func (c *chaos) round(t *testing.T, n int, kind chaosKind, kill bool) {
	f := c.f
	label := fmt.Sprintf("round %d (%s, seed %d)", n, kind, c.seed)
	if !kill {
		label = fmt.Sprintf("final round (%s, no kill, seed %d)", kind, c.seed)
	}
	c.errs = 0
	auditFrom := len(f.audit(c.r))
	before := map[string][]versionState{}
	for _, s := range f.secrets {
		before[s.name] = f.storedVersions(s)
	}
	latency := time.Duration(100+c.rng.Intn(500)) * time.Millisecond
	smLatency := time.Duration(50+c.rng.Intn(200)) * time.Millisecond
	if kill {
		f.simAdmin("POST", "/_sim/faults", map[string]any{"latency": latency.String()}, nil)
		c.smWrites.set(smLatency, func(r *http.Request, _ []byte) bool {
			op := r.Header.Get("X-Amz-Target")
			return strings.HasSuffix(op, ".PutSecretValue") || strings.HasSuffix(op, ".UpdateSecretVersionStage") || strings.HasSuffix(op, ".TagResource")
		})
	}
	requestsFrom := len(f.simRequests())

	a := c.ask(t, label, kind)
	if a == nil {
		f.simAdmin("DELETE", "/_sim/faults", nil, nil)
		c.stats.failedRound = append(c.stats.failedRound, n)
		return
	}
	c.stats.rounds[kind]++
	if kill {
		// A rotation costs three or four LakiConnect calls and two or three
		// Secrets Manager writes, each held back: kill anywhere in that span.
		c.killAt(t, a, time.Duration(c.rng.Int63n(int64(4*latency+3*smLatency+200*time.Millisecond))), auditFrom, "")
		if c.rng.Intn(3) == 0 {
			// Killed again while resuming.
			f.start(c.r, false)
			c.killAt(t, a, time.Duration(c.rng.Int63n(int64(3*latency+time.Second))), auditFrom, "resuming, ")
		}
		f.simAdmin("DELETE", "/_sim/faults", nil, nil)
		c.smWrites.set(0, nil)
		f.start(c.r, true)
	}
	c.converge(t, label, a, before)
	c.check(t, label, a, before, auditFrom)
	for _, rq := range f.simRequests()[requestsFrom:] {
		if rq.Faulted && rq.Status == 0 {
			c.stats.midCall[rq.Method+" "+callClass(rq.Path)]++
		}
	}
	if c.errs > 0 {
		c.stats.failedRound = append(c.stats.failedRound, n)
		t.Logf("%s: what happened\n%s", label, c.story(a))
	}
}

// callClass names a LakiConnect path without its ids.
func callClass(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "key_") || strings.HasPrefix(s, "we_") || strings.HasPrefix(s, "whs_") {
			segs[i] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

func (c *chaos) ask(t *testing.T, label string, kind chaosKind) *ask {
	f := c.f
	a := &ask{kind: kind, at: time.Now()}
	var body map[string]any
	switch kind {
	case chaosBatch:
		a.targets = f.owned(fleetOwnerAll)
		body = map[string]any{"owner": fleetOwnerAll, "cause": "manual", "reason": label}
	case chaosPersonnel:
		a.targets = f.owned(fleetOwnerPeople)
		body = map[string]any{"owner": fleetOwnerPeople, "cause": "personnel", "reason": label}
	case chaosCompromise:
		var keys []fleetSecret
		for _, s := range f.owned(fleetOwnerAll) {
			if s.kind == "api_key" {
				keys = append(keys, s)
			}
		}
		s := keys[c.rng.Intn(len(keys))]
		a.targets = []fleetSecret{s}
		a.exposed = current(f.storedVersions(s)).cred
		var out struct {
			EventID string `json:"event_id"`
		}
		f.simAdmin("POST", "/_sim/keys/"+a.exposed+"/expose", map[string]string{"source": "public_repository", "url": "https://example.invalid/" + label}, &out)
		a.eventID = out.EventID
		return a
	}
	st, ack, raw := f.trigger(c.r, body)
	if st != 202 {
		c.fail(t, label, "POST /v1/triggers %v: status %d %s, want 202", body, st, raw)
		return nil
	}
	a.triggerID, _ = ack["id"].(string)
	a.requester, _ = ack["requester"].(string)
	if a.triggerID == "" || a.requester == "" {
		c.fail(t, label, "the trigger's answer names no id or requester: %s", raw)
	}
	return a
}

// killAt waits d, notes how far each asked secret had come, and kills.
func (c *chaos) killAt(t *testing.T, a *ask, d time.Duration, auditFrom int, when string) {
	time.Sleep(d)
	recs := c.f.audit(c.r)
	if len(recs) > auditFrom {
		recs = recs[auditFrom:]
	} else {
		recs = nil
	}
	for _, s := range a.targets {
		last := ""
		for _, r := range recs {
			if r.Event.Secret == s.name && r.Event.Step != "trigger" {
				last = r.Event.Step + "/" + r.Event.Outcome
			}
		}
		c.stats.killPoints[when+s.kind+" "+killStep(last)]++
	}
	c.f.kill(c.r)
	c.stats.kills++
}

// killStep names where a rotation was when killed, from its last audit
// record: each record is written when a step's work is done, so the kill
// landed in the step that follows it.
func killStep(last string) string {
	switch last {
	case "":
		return "1 accepted, not started"
	case "rotation/started":
		return "2 in create (LakiConnect create)"
	case "create/started":
		return "3 in create (the put of AWSPENDING)"
	case "create/succeeded":
		return "4 in test"
	case "test/succeeded":
		return "5 in promote"
	case "promote/succeeded":
		return "6 after promote (ending the old credential)"
	case "retire/started":
		return "7 in retire"
	case "rotation/succeeded":
		return "8 done"
	}
	return "after " + last
}

// converge waits until every asked secret has a new AWSCURRENT and nothing
// in flight (and, for a compromise, the exposed key ended).
func (c *chaos) converge(t *testing.T, label string, a *ask, before map[string][]versionState) {
	f := c.f
	deadline := time.Now().Add(40 * time.Second)
	for {
		var waiting []string
		for _, s := range a.targets {
			vs := f.storedVersions(s)
			cur, was := current(vs), current(before[s.name])
			switch {
			case cur.id == "":
				waiting = append(waiting, s.name+": no AWSCURRENT")
			case cur.id == was.id:
				waiting = append(waiting, s.name+": AWSCURRENT not moved")
			}
			for _, v := range vs {
				if v.has("AWSPENDING") && !v.has("AWSCURRENT") {
					waiting = append(waiting, fmt.Sprintf("%s: version %s still AWSPENDING", s.name, v.id))
				}
			}
		}
		if a.exposed != "" {
			if k := c.key(a.targets[0].env, a.exposed); k.Status != laki.StatusRevoked {
				waiting = append(waiting, fmt.Sprintf("exposed key %s is %s", a.exposed, k.Status))
			}
		}
		if len(waiting) == 0 {
			return
		}
		select {
		case <-c.r.proc.done:
			c.fail(t, label, "the daemon exited (%d) while converging\n%s", c.r.proc.code, f.tail(c.r))
			f.start(c.r, true)
		default:
		}
		if time.Now().After(deadline) {
			c.fail(t, label, "not converged 40s after the restart:\n  %s\n%s", strings.Join(waiting, "\n  "), c.story(a))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// story is what the audit and LakiConnect saw of the asked secrets this
// round, for a failure message.
func (c *chaos) story(a *ask) string {
	var b strings.Builder
	asked := map[string]bool{}
	for _, s := range a.targets {
		asked[s.name] = true
	}
	b.WriteString("--- audit of the asked secrets since the ask ---\n")
	for _, r := range c.f.audit(c.r) {
		ev := r.Event
		if (asked[ev.Secret] || (ev.Step == "trigger" && ev.Secret == "")) && !r.Time.Before(a.at) {
			fmt.Fprintf(&b, "%d %s %s/%s %s cause=%s source=%s actor=%s trigger=%s err=%q\n", r.Seq, r.Time.Format("15:04:05.000"), ev.Step, ev.Outcome, ev.Secret, ev.Cause, ev.Source, ev.Actor, ev.TriggerID, ev.Error)
		}
	}
	if a.exposed != "" {
		var ds []struct {
			EventType  string    `json:"event_type"`
			Attempt    int       `json:"attempt"`
			StatusCode int       `json:"status_code"`
			Error      string    `json:"error"`
			At         time.Time `json:"at"`
		}
		c.f.simAdmin("GET", "/_sim/deliveries", nil, &ds)
		b.WriteString("--- LakiConnect deliveries of api_key.exposed since the ask ---\n")
		for _, d := range ds {
			if d.EventType == "api_key.exposed" && !d.At.Before(a.at) {
				fmt.Fprintf(&b, "%s attempt %d: status %d %s\n", d.At.Format("15:04:05.000"), d.Attempt, d.StatusCode, d.Error)
			}
		}
	}
	return b.String()
}

func (c *chaos) key(env laki.Environment, id string) laki.APIKey {
	var k laki.APIKey
	c.f.simGet(env, "/api_keys/"+id, &k)
	return k
}

// check holds one round to the invariants.
func (c *chaos) check(t *testing.T, label string, a *ask, before map[string][]versionState, auditFrom int) {
	f := c.f
	errorf := func(format string, args ...any) { t.Helper(); c.fail(t, label, format, args...) }
	after := map[string][]versionState{}
	referenced := map[string]string{} // credential id → secret
	for _, s := range f.secrets {
		after[s.name] = f.storedVersions(s)
		for _, v := range after[s.name] {
			referenced[v.cred] = s.name
		}
	}

	// 1. No rotator-made key is active and held by no stored version.
	for _, env := range envs {
		for _, k := range f.keys(env) {
			if k.Metadata[rotator.MetaCreatedBy] != rotator.MetaCreatedByValue || k.Status != laki.StatusActive {
				continue
			}
			if _, ok := referenced[k.ID]; !ok {
				exp := "no expiry"
				if k.ExpiresAt != nil {
					exp = "expires " + k.ExpiresAt.Format(time.RFC3339)
				}
				errorf("orphan: %s key %s (made for %s, version %s, %s) is active and no stored version holds it",
					env, k.ID, k.Metadata[rotator.MetaSecret], k.Metadata[rotator.MetaVersion], exp)
			}
		}
	}
	// 2. Every managed endpoint: at most 2 live secrets, every active one stored.
	for _, s := range f.secrets {
		if s.kind != "webhook_secret" {
			continue
		}
		ep := f.endpoint(s.env, s.endpointID)
		live := 0
		for _, ws := range ep.Secrets {
			if ws.Status == laki.StatusRevoked {
				continue
			}
			live++
			if _, ok := referenced[ws.ID]; !ok && ws.Status == laki.StatusActive {
				errorf("orphan: endpoint %s (%s) has secret %s active and no stored version of %s holds it", ep.ID, s.env, ws.ID, s.name)
			}
		}
		if live > laki.MaxLiveSecretsPerEndpoint {
			errorf("endpoint %s of %s has %d live secrets, at most %d", ep.ID, s.name, live, laki.MaxLiveSecretsPerEndpoint)
		}
	}
	// 3. Each asked secret rotated exactly once.
	asked := map[string]bool{}
	for _, s := range a.targets {
		asked[s.name] = true
		if msg := rotatedOnce(before[s.name], after[s.name]); msg != "" {
			errorf("%s: not rotated exactly once: %s", s.name, msg)
		}
		c.checkOldCredential(t, label, a, s, current(before[s.name]).cred)
	}
	for _, s := range f.secrets {
		if !asked[s.name] && len(after[s.name]) != len(before[s.name]) {
			errorf("%s was not asked for but has %d new versions", s.name, len(after[s.name])-len(before[s.name]))
		}
	}
	// 4. The audit names the original cause, trigger and requester.
	recs := f.audit(c.r)
	if len(recs) < auditFrom {
		errorf("the audit file shrank from %d to %d records", auditFrom, len(recs))
		return
	}
	recs = recs[auditFrom:]
	triggerID, requester := a.triggerID, a.requester
	if a.kind == chaosCompromise {
		// The receiver names the trigger after the event: take the
		// identity of the first record that names the event.
		for _, r := range recs {
			if triggerID == "" && r.Event.Cause == "compromise" && strings.Contains(r.Event.TriggerID, a.eventID) {
				triggerID, requester = r.Event.TriggerID, r.Event.Actor
			}
		}
		if triggerID == "" {
			errorf("no audit record names event %s (the exposure of key %s) as its trigger", a.eventID, a.exposed)
		}
	}
	for _, s := range a.targets {
		succeeded := 0
		var lost []string
		for _, r := range recs {
			ev := r.Event
			if ev.Secret != s.name || ev.Step == "trigger" {
				continue
			}
			// The retire pass (no cause, the schedule's) confirms on its
			// own that replaced credentials ended: not a step of the ask.
			if ev.Step == "retire" && ev.Cause == "" && ev.Source == "schedule" {
				continue
			}
			if ev.Step == "rotation" && ev.Outcome == "succeeded" {
				succeeded++
			}
			if ev.Cause != causeOf(a.kind) || (triggerID != "" && ev.TriggerID != triggerID) || (requester != "" && ev.Actor != requester) {
				lost = append(lost, fmt.Sprintf("#%d %s/%s cause=%s source=%s actor=%s trigger=%q", r.Seq, ev.Step, ev.Outcome, ev.Cause, ev.Source, ev.Actor, ev.TriggerID))
			}
		}
		if len(lost) > 0 {
			errorf("%s: %d audit records lost the asked identity (want cause=%s trigger=%s actor=%s), e.g.\n  %s",
				s.name, len(lost), causeOf(a.kind), triggerID, requester, strings.Join(lost[:min(3, len(lost))], "\n  "))
		}
		if succeeded == 0 {
			errorf("%s: the audit has no rotation/succeeded record", s.name)
		}
	}
}

func causeOf(k chaosKind) string {
	if k == chaosBatch {
		return "manual"
	}
	return string(k)
}

// checkOldCredential: the replaced credential ends with its cause's grace:
// at once for a compromise, within the personnel grace for a personnel
// change, within the scheduled grace for a manual one.
func (c *chaos) checkOldCredential(t *testing.T, label string, a *ask, s fleetSecret, old string) {
	t.Helper()
	// The fleet's policies: keys 6s/3s/0, webhook secrets 3s/2s/0.
	grace := map[chaosKind]time.Duration{chaosCompromise: 0, chaosPersonnel: 3 * time.Second, chaosBatch: 6 * time.Second}[a.kind]
	if s.kind == "webhook_secret" {
		grace = map[chaosKind]time.Duration{chaosCompromise: 0, chaosPersonnel: 2 * time.Second, chaosBatch: 3 * time.Second}[a.kind]
	}
	var status laki.KeyStatus
	var expires *time.Time
	if s.kind == "api_key" {
		k := c.key(s.env, old)
		status, expires = k.Status, k.ExpiresAt
		if k.RevokedAt != nil && expires == nil {
			expires = k.RevokedAt
		}
	} else {
		for _, ws := range c.f.endpoint(s.env, s.endpointID).Secrets {
			if ws.ID == old {
				status, expires = ws.Status, ws.ExpiresAt
			}
		}
	}
	// The end is set at the promote, before this look: now + grace bounds
	// it (a second for LakiConnect's whole-second times).
	latest := time.Now().Add(grace + time.Second)
	switch {
	case a.kind == chaosCompromise && status != laki.StatusRevoked:
		c.fail(t, label, "%s: exposed credential %s is %s, want revoked (compromise grace 0)", s.name, old, status)
	case status == laki.StatusActive:
		c.fail(t, label, "%s: replaced credential %s is still active with no end", s.name, old)
	case expires != nil && expires.After(latest):
		c.fail(t, label, "%s: replaced credential %s ends %s, later than the %s grace of a %s rotation allows",
			s.name, old, expires.Format(time.RFC3339), grace, causeOf(a.kind))
	}
}

func (c *chaos) report(t *testing.T) {
	s := c.stats
	var b strings.Builder
	fmt.Fprintf(&b, "chaos seed %d: rounds %v, %d SIGKILLs\nkill points (per asked secret, the step it was in when killed):\n", c.seed, s.rounds, s.kills)
	writeCounts(&b, s.killPoints)
	var unmet []string
	for _, step := range []string{"1 ", "2 ", "3 ", "4 ", "5 ", "6 "} {
		met := false
		for k := range s.killPoints {
			met = met || strings.Contains(k, step)
		}
		if !met {
			unmet = append(unmet, step)
		}
	}
	if len(unmet) > 0 {
		fmt.Fprintf(&b, "no kill landed at steps %s (more rounds: E2E_CHAOS_ROUNDS or E2E_CHAOS_BUDGET)\n", strings.Join(unmet, ""))
	}
	b.WriteString("LakiConnect calls cut off mid-call by a kill:\n")
	writeCounts(&b, s.midCall)
	if len(s.failedRound) > 0 {
		fmt.Fprintf(&b, "failing rounds: %v\n", s.failedRound)
	}
	t.Log(b.String())
}

func writeCounts(b *strings.Builder, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, k := range keys {
		fmt.Fprintf(b, "  %-40s %d\n", k, m[k])
	}
}
