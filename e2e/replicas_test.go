package e2e

// Two and three `lakirotator serve` replicas on one store and one
// LakiConnect: each asked the same manual rotation, the same owner trigger
// and the same security event at the same instant, and running the same
// scheduled slot with one replica held back a few hundred ms at each step
// in turn. Each case must end with exactly one new credential per secret,
// AWSCURRENT on exactly one version whenever a consumer looks, no failed
// replica, and one notification per rotation.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

func TestReplicasConverge(t *testing.T) {
	if testing.Short() {
		t.Skip("replicas: starts moto, lakisim and several daemons")
	}
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d_replicas", n), func(t *testing.T) {
			t.Parallel()
			testReplicas(t, n)
		})
	}
}

// consumer polls Secrets Manager as a consumer would and notes every
// instant a secret has no AWSCURRENT, or more than one.
type consumer struct {
	mu      sync.Mutex
	polls   int
	lapses  []string
	stop    chan struct{}
	stopped chan struct{}
}

func (f *fleet) startConsumer() *consumer {
	c := &consumer{stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(c.stopped)
		for {
			for _, s := range f.secrets {
				select {
				case <-c.stop:
					return
				default:
				}
				n, err := f.currentCount(s)
				c.mu.Lock()
				c.polls++
				if err == nil && n != 1 {
					c.lapses = append(c.lapses, fmt.Sprintf("%s %s: %d versions hold AWSCURRENT", time.Now().Format("15:04:05.000"), s.name, n))
				}
				c.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return c
}

// take returns the lapses seen since the last take.
func (c *consumer) take() (polls int, lapses []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	polls, lapses = c.polls, c.lapses
	c.polls, c.lapses = 0, nil
	return polls, lapses
}

func (c *consumer) close() {
	close(c.stop)
	<-c.stopped
}

// replicaCase is one thing asked of every replica at once.
type replicaCase struct {
	name    string
	targets []fleetSecret
	cause   string
	before  map[string][]versionState
	slackN  int
	audit   []int // audit length of each replica before the case
	started time.Time
	// overlapped: other cases ran during this one, so secrets it did
	// not ask for may have rotated.
	overlapped bool
}

func testReplicas(t *testing.T, n int) {
	// The slot: once a day, at the first whole minute 40 s or more from
	// now (the replicas are up by then), so that it fires once while the
	// test runs; the other cases run while it comes.
	slot := time.Now().UTC().Add(40 * time.Second).Truncate(time.Minute).Add(time.Minute)
	o := fleetOptions{replicas: n, schedule: fmt.Sprintf("%d %d * * *", slot.Minute(), slot.Hour()),
		lakiProxy: map[int]*delayProxy{}, awsProxy: map[int]*delayProxy{}}
	for i := 1; i < n; i++ {
		o.lakiProxy[i], o.awsProxy[i] = &delayProxy{}, &delayProxy{}
	}
	f := newFleet(t, o)
	// Replica i runs 400 ms × i late at one step of each slot secret.
	for i := 1; i < n; i++ {
		expireOld := current(f.storedVersions(f.secret(slotSecret("expire")))).cred
		o.lakiProxy[i].set(time.Duration(i)*400*time.Millisecond, func(r *http.Request, body []byte) bool {
			return (r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/api_keys") && bytes.Contains(body, []byte(slotSecret("create")))) ||
				(r.Method == "POST" && strings.Contains(r.URL.Path, "/api_keys/"+expireOld+"/expire"))
		})
		o.awsProxy[i].set(time.Duration(i)*400*time.Millisecond, func(r *http.Request, body []byte) bool {
			op := r.Header.Get("X-Amz-Target")
			return (strings.HasSuffix(op, ".PutSecretValue") && bytes.Contains(body, []byte(slotSecret("put")))) ||
				(strings.HasSuffix(op, ".GetSecretValue") && bytes.Contains(body, []byte(slotSecret("read")))) ||
				(strings.HasSuffix(op, ".UpdateSecretVersionStage") && bytes.Contains(body, []byte(slotSecret("promote"))))
		})
	}
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Add(1)
		go func(r *replica) {
			defer wg.Done()
			f.start(r, false)
		}(r)
	}
	wg.Wait()
	for _, r := range f.replicas {
		f.waitReady(r)
	}
	cons := f.startConsumer()
	defer cons.close()
	defer func() {
		if t.Failed() {
			for _, r := range f.replicas {
				t.Log(f.tail(r))
			}
			t.Log(f.slack.dump())
		}
	}()
	checkConsumer := func(label string) {
		polls, lapses := cons.take()
		if len(lapses) > 0 {
			t.Errorf("up to the end of %s: a consumer polling AWSCURRENT (%d polls) saw %d lapses, e.g.\n  %s", label, polls, len(lapses), strings.Join(lapses[:min(5, len(lapses))], "\n  "))
		}
	}
	checkConsumer("start-up")

	// The slot secrets are touched only by the slot: their case starts now
	// and is checked once the slot is past.
	var slotted []fleetSecret
	for _, step := range slotSteps {
		slotted = append(slotted, f.secret(slotSecret(step)))
	}
	slotCase := f.beginCase(fmt.Sprintf("scheduled slot %s, late replicas", slot.Format("15:04")), slotted, "scheduled")
	slotCase.overlapped = true // the cases below rotate the other secrets meanwhile

	// 1. The same manual rotation, asked of every replica at once.
	checkout := f.secret("payments/production/checkout")
	c := f.beginCase("same manual rotation", []fleetSecret{checkout}, "manual")
	f.atOnce(func(r *replica) {
		st, _, raw := f.trigger(r, map[string]any{"secret": checkout.name, "cause": "manual", "reason": "the same ask to every replica"})
		if st != 202 {
			t.Errorf("replica %d: POST /v1/triggers: %d %s", r.no, st, raw)
		}
	})
	f.endCase(t, c)
	checkConsumer(c.name)

	// 2. The same owner trigger (a personnel change), at once.
	c = f.beginCase("same owner trigger", f.owned(fleetOwnerPeople), "personnel")
	f.atOnce(func(r *replica) {
		st, _, raw := f.trigger(r, map[string]any{"owner": fleetOwnerPeople, "cause": "personnel", "reason": "ursula left"})
		if st != 202 {
			t.Errorf("replica %d: POST /v1/triggers: %d %s", r.no, st, raw)
		}
	})
	f.endCase(t, c)
	checkConsumer(c.name)

	// 3. The same security event delivered to every replica at once.
	c = f.beginCase("same security event", []fleetSecret{checkout}, "compromise")
	if exposed := current(c.before[checkout.name]).cred; exposed == "" {
		t.Errorf("%s: skipped: %s has no AWSCURRENT to expose (left so by the cases before)", c.name, checkout.name)
	} else {
		data, _ := json.Marshal(lakiconnect.APIKeyExposedData{KeyID: exposed, FoundIn: "public_repository", DetectedAt: time.Now().UTC()})
		ev := lakiconnect.Event{ID: "evt_REPLICAS" + randomAlnum(t, 16), Object: "event", Type: "api_key.exposed", Created: time.Now().Unix(),
			MasterMerchantID: fleetMerchant, Environment: laki.Production, Data: data}
		ev.IdempotencyKey = "idem_" + ev.ID
		body, _ := json.Marshal(ev)
		f.atOnce(func(r *replica) {
			if st := f.postEvent(r, laki.Production, body); st/100 != 2 {
				t.Errorf("replica %d: the signed event was answered %d, want 2xx", r.no, st)
			}
		})
		f.endCase(t, c)
		if k := f.key(laki.Production, exposed); k.Status != laki.StatusRevoked {
			t.Errorf("%s: exposed key %s is %s, want revoked", c.name, exposed, k.Status)
		}
	}
	checkConsumer(c.name)

	// 4. The scheduled slot, every replica but the first held back at one
	// step of each slot secret.
	if wait := time.Until(slot); wait > 0 {
		t.Logf("waiting %s for the slot at %s", wait.Round(time.Second), slot.Format("15:04:05"))
		time.Sleep(wait)
	}
	f.endCase(t, slotCase)
	checkConsumer(slotCase.name)

	// 5. Then everything rotates normally, asked of one replica.
	c = f.beginCase("everything after", f.owned(fleetOwnerAll), "manual")
	if st, _, raw := f.trigger(f.replicas[n-1], map[string]any{"owner": fleetOwnerAll, "cause": "manual", "reason": "after the races"}); st != 202 {
		t.Fatalf("POST /v1/triggers: %d %s", st, raw)
	}
	f.endCase(t, c)
	checkConsumer(c.name)
}

func randomAlnum(t *testing.T, n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte(randomHex(t, n))
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b[:n])
}

func (f *fleet) key(env laki.Environment, id string) laki.APIKey {
	var k laki.APIKey
	f.simGet(env, "/api_keys/"+id, &k)
	return k
}

// atOnce runs ask against every replica at the same instant.
func (f *fleet) atOnce(ask func(r *replica)) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for _, r := range f.replicas {
		ready.Add(1)
		done.Add(1)
		go func(r *replica) {
			defer done.Done()
			ready.Done()
			<-gate
			ask(r)
		}(r)
	}
	ready.Wait()
	close(gate)
	done.Wait()
}

func (f *fleet) beginCase(name string, targets []fleetSecret, cause string) *replicaCase {
	c := &replicaCase{name: name, targets: targets, cause: cause, before: map[string][]versionState{}, started: time.Now(),
		slackN: len(f.slack.messages())}
	for _, s := range f.secrets {
		c.before[s.name] = f.storedVersions(s)
	}
	for _, r := range f.replicas {
		c.audit = append(c.audit, len(f.audit(r)))
	}
	return c
}

// endCase waits until every target has a new AWSCURRENT and nothing in
// flight, gives stragglers a moment, then holds the case to its promises.
func (f *fleet) endCase(t *testing.T, c *replicaCase) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		var waiting []string
		for _, s := range c.targets {
			vs := f.storedVersions(s)
			if cur := current(vs); cur.id == "" || cur.id == current(c.before[s.name]).id {
				waiting = append(waiting, s.name+": AWSCURRENT not moved")
			}
			for _, v := range vs {
				if v.has("AWSPENDING") && !v.has("AWSCURRENT") {
					waiting = append(waiting, s.name+": version "+v.id+" still AWSPENDING")
				}
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not converged in 45s:\n  %s", c.name, strings.Join(waiting, "\n  "))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a late replica's steps land in this time, if any

	// Exactly one new version per secret, and it is AWSCURRENT; untouched secrets stay so.
	referenced := map[string]bool{}
	for _, s := range f.secrets {
		vs := f.storedVersions(s)
		for _, v := range vs {
			referenced[v.cred] = true
		}
		if c.isTarget(s.name) {
			if msg := rotatedOnce(c.before[s.name], vs); msg != "" {
				t.Errorf("%s: %s not rotated exactly once: %s", c.name, s.name, msg)
			}
		} else if len(vs) != len(c.before[s.name]) && !strings.HasPrefix(s.name, "reports/") && !c.overlapped {
			t.Errorf("%s: %s was not asked for but has %d new versions", c.name, s.name, len(vs)-len(c.before[s.name]))
		}
	}
	// Exactly one new live credential per secret; a loser's own is ended.
	for _, s := range c.targets {
		if s.kind != "api_key" {
			continue
		}
		var made, live []string
		for _, k := range f.keys(s.env) {
			if k.Metadata[rotator.MetaSecret] != s.name || k.CreatedAt.Before(c.started.Add(-time.Second)) {
				continue
			}
			made = append(made, k.ID+"("+string(k.Status)+")")
			if k.Status == laki.StatusActive {
				live = append(live, k.ID)
				if !referenced[k.ID] {
					t.Errorf("%s: %s: key %s is active and no stored version holds it: an orphan", c.name, s.name, k.ID)
				}
			}
		}
		if len(live) != 1 {
			t.Errorf("%s: %s: new keys at LakiConnect %v, want exactly one active", c.name, s.name, made)
		}
	}
	for _, s := range c.targets {
		if s.kind != "webhook_secret" {
			continue
		}
		ep := f.endpoint(s.env, s.endpointID)
		live := 0
		for _, ws := range ep.Secrets {
			if ws.Status == laki.StatusActive {
				live++
				if !referenced[ws.ID] {
					t.Errorf("%s: %s: endpoint secret %s is active and no stored version holds it", c.name, s.name, ws.ID)
				}
			}
		}
		if live != 1 {
			t.Errorf("%s: %s: endpoint %s has %d active secrets, want 1 (the new one; the old one expiring)", c.name, s.name, ep.ID, live)
		}
	}
	// No failed replica.
	for i, r := range f.replicas {
		recs := f.audit(r)
		if len(recs) < c.audit[i] {
			t.Errorf("%s: replica %d's audit shrank", c.name, r.no)
			continue
		}
		var failed []string
		for _, rec := range recs[c.audit[i]:] {
			if rec.Event.Outcome == "failed" && c.isTarget(rec.Event.Secret) {
				failed = append(failed, fmt.Sprintf("#%d %s/%s %s err=%q", rec.Seq, rec.Event.Step, rec.Event.Outcome, rec.Event.Secret, rec.Event.Error))
			}
		}
		if len(failed) > 0 {
			t.Errorf("%s: replica %d audited %d failures, e.g.\n  %s", c.name, r.no, len(failed), strings.Join(failed[:min(3, len(failed))], "\n  "))
		}
	}
	// One notification per rotation, none of failure.
	msgs := f.slack.messages()[c.slackN:]
	var paged []string
	for _, m := range msgs {
		if strings.Contains(strings.ToLower(m.header()), "fail") && c.isTarget(strings.Trim(m.fields()["Secret"], "`")) {
			paged = append(paged, m.header())
		}
	}
	if len(paged) > 0 {
		t.Errorf("%s: Slack got %d failure messages: %q", c.name, len(paged), paged)
	}
	for _, s := range c.targets {
		n := 0
		for _, m := range msgs {
			if m.fields()["Secret"] == "`"+s.name+"`" && strings.Contains(m.header(), "succeeded") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %s: %d \"succeeded\" messages in Slack, want 1 (one per rotation)", c.name, s.name, n)
		}
	}
}

func (c *replicaCase) isTarget(name string) bool {
	for _, s := range c.targets {
		if s.name == name {
			return true
		}
	}
	return false
}
