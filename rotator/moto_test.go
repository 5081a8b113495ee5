package rotator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretsmanager/awsfault"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// motoBatch seeds n API-key secrets spread over merchants (LakiConnect
// allows 50 live keys per merchant, and a rotation holds two per secret
// during the grace) into moto, and returns the jobs with the listing data a
// scheduler would pass.
type motoBatch struct {
	h       *harness
	store   *secretsmanager.Store
	counter *secretsmanager.CallCounter
	fault   *awsfault.Injector
	src     rotator.IssuerSource
	jobs    []rotator.Job
}

func newMotoBatch(t *testing.T, n, perMerchant int, fault *awsfault.Injector) *motoBatch {
	h := newHarness(t)
	endpoint := motoserver.Start(t)
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	counter := secretsmanager.NewCallCounter(secretsmanager.CallCounterOptions{Strict: true})
	opts := []secretsmanager.Option{secretsmanager.WithCallCounter(counter)}
	var seedOpts []func(*sm.Options)
	if fault != nil {
		opts = append(opts, secretsmanager.WithAPIOptions(fault.APIOption()))
		seedOpts = append(seedOpts, fault.ClientOption())
	}
	store, err := secretsmanager.New(context.Background(), secretsmanager.Config{
		Region: motoserver.Region, Endpoint: endpoint, Credentials: creds,
		Limits: secretsmanager.Limits{ReadRate: 1000, WriteRate: 1000},
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	seed := sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds}, seedOpts...)
	b := &motoBatch{h: h, store: store, counter: counter, fault: fault}
	keys := map[laki.Merchant]lakiconnect.KeySource{}
	var merchant string
	ctx := context.Background()
	for i := range n {
		if i%perMerchant == 0 {
			merchant = h.fx.Sim.AddMasterMerchant("")
			mk, err := h.fx.Sim.CreateKey(laki.Sandbox, merchant, "management", laki.AllScopes)
			if err != nil {
				t.Fatal(err)
			}
			h.keep(mk.Secret)
			keys[laki.Merchant{Environment: laki.Sandbox, MasterMerchantID: merchant}] = lakiconnect.StaticKey(mk.Secret)
		}
		name := fmt.Sprintf("%s/svc-%03d", strings.ReplaceAll(t.Name(), "/", "-"), i)
		k, err := h.fx.Sim.CreateKey(laki.Sandbox, merchant, name, apiScopes)
		if err != nil {
			t.Fatal(err)
		}
		h.keep(k.Secret)
		v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "sandbox", MasterMerchantID: merchant,
			KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seed.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}); err != nil {
			t.Fatal(err)
		}
		ms := inventory.ManagedSecret{Name: name, Kind: inventory.KindAPIKey, Environment: laki.Sandbox, MasterMerchantID: merchant, Policy: "p"}
		b.jobs = append(b.jobs, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("2026-06-01T09:00:00Z")})
	}
	// LakiConnect counts per key in real time: keep under its 100/s.
	b.src = h.source(keys, func(c *lakiconnect.Config) { c.RateLimit, c.RateBurst = 80, 10 })
	// The scheduler's listing: one ListSecrets walk gives every secret's stages.
	byName := map[string]secretstore.Secret{}
	if err := store.List(ctx, nil, func(s secretstore.Secret) error { byName[s.Name] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range b.jobs {
		s, ok := byName[b.jobs[i].Secret.Name]
		if !ok {
			t.Fatalf("listing misses %s", b.jobs[i].Secret.Name)
		}
		b.jobs[i].Known = &s
	}
	t.Cleanup(func() {
		if f := counter.Forbidden(); len(f) > 0 {
			t.Errorf("operations outside Operations(): %v", f)
		}
	})
	return b
}

func (b *motoBatch) engine(workers int) *rotator.Engine {
	return b.h.engine(func(c *rotator.Config) {
		c.Store, c.Issuers, c.Workers = b.store, b.src, workers
		c.Verifier = webhooksig.Verifier{Clock: b.h.fx.Clock}
	})
}

// Scale smoke: 200 secrets in one batch against moto, at most 3 Secrets
// Manager calls and exactly 2 writes per rotation.
func TestMotoBatchOf200CallBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("moto")
	}
	const n = 200
	b := newMotoBatch(t, n, 20, nil)
	e := b.engine(8)
	run := func(label string) []rotator.JobOutcome {
		before := b.counter.Snapshot()
		beforeTotal, beforeWrites := b.counter.Total(), b.counter.Writes()
		start := time.Now()
		out := e.RunBatch(context.Background(), b.jobs, nil)
		elapsed := time.Since(start)
		for _, o := range out {
			if o.Err != nil {
				t.Fatalf("%s: %v", o.Job.Secret.Name, o.Err)
			}
		}
		total, writes := b.counter.Total()-beforeTotal, b.counter.Writes()-beforeWrites
		diff := map[string]int{}
		for k, v := range b.counter.Snapshot() {
			if d := v - before[k]; d != 0 {
				diff[k] = d
			}
		}
		t.Logf("%s: %d rotations in %s: %d Secrets Manager calls (%.2f per rotation), %d writes (%.2f per rotation): %v",
			label, n, elapsed.Round(time.Millisecond), total, float64(total)/n, writes, float64(writes)/n, diff)
		if writes != 2*n {
			t.Fatalf("%s: %d writes for %d rotations, want exactly 2 per rotation", label, writes, n)
		}
		// Exactly one read per rotation (the old credential, AWSCURRENT) and
		// the two writes.
		if total != 3*n {
			t.Fatalf("%s: %d calls for %d rotations, want exactly 3 per rotation", label, total, n)
		}
		return out
	}
	run("first rotation of hand-made keys")
	b.h.fx.Clock.Advance(25 * time.Hour) // the old keys' grace ends (LakiConnect's 50-key limit)
	for i := range b.jobs {              // the scheduler's next listing
		s, err := b.store.Describe(context.Background(), b.jobs[i].Secret.Name)
		if err != nil {
			t.Fatal(err)
		}
		b.jobs[i].Known = &s
		b.jobs[i].Trigger = scheduled("2026-06-08T09:00:00Z")
	}
	out := run("steady state")
	// Spot-check consumers' view: AWSCURRENT works, labels as AWS's template leaves them.
	for _, i := range []int{0, n / 2, n - 1} {
		j := b.jobs[i]
		v, err := b.store.Get(context.Background(), j.Secret.Name, secretstore.ByStage(secretstore.StageCurrent))
		if err != nil {
			t.Fatal(err)
		}
		c, err := secretstore.DecodeCredential(j.Secret.Name, v.Value)
		if err != nil {
			t.Fatal(err)
		}
		b.h.keep(c.Secret)
		if _, err := b.h.whoami(laki.Sandbox, c.Secret); err != nil {
			t.Fatalf("%s: current key fails: %v", j.Secret.Name, err)
		}
		if v.ID != out[i].Result.VersionID || !containsAll(v.Stages, secretstore.StageCurrent, secretstore.StagePending) {
			t.Fatalf("%s: AWSCURRENT is version %s %v, rotation made %s", j.Secret.Name, v.ID, v.Stages, out[i].Result.VersionID)
		}
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// AWS throttles where moto never does: with awsfault returning
// ThrottlingException above a small write quota, a batch still completes,
// each rotation exactly once, with no key lost or doubled.
func TestMotoThrottlingIsRiddenOut(t *testing.T) {
	if testing.Short() {
		t.Skip("moto")
	}
	fault := awsfault.New(awsfault.Config{WriteRate: 10, ReadRate: 20, TokenReuse: true})
	b := newMotoBatch(t, 30, 15, fault)
	advanceWhileWaiting(t, b.h.fx.Clock, time.Second)
	e := b.h.engine(func(c *rotator.Config) {
		c.Store, c.Issuers, c.Workers, c.Attempts = b.store, b.src, 8, 8
		c.Backoff = rotator.Backoff{Base: time.Second, Max: 2 * time.Second}
	})
	out := e.RunBatch(context.Background(), b.jobs, nil)
	for _, o := range out {
		if o.Err != nil {
			t.Errorf("%s: %v", o.Job.Secret.Name, o.Err)
			continue
		}
		keys := b.h.rotatorKeysOf(o.Job.Secret.MasterMerchantID, o.Job.Secret.Name)
		if len(keys) != 1 || keys[0].ID != o.Result.KeyID {
			t.Errorf("%s: %d keys", o.Job.Secret.Name, len(keys))
		}
	}
	inj := fault.Injected()
	t.Logf("throttling injected: %v", inj)
	if len(inj) == 0 {
		t.Fatal("the quota never bit: the test proves nothing")
	}
	_ = events.CauseScheduled
}

func (h *harness) rotatorKeysOf(merchant, name string) []laki.APIKey {
	var out []laki.APIKey
	for _, k := range h.fx.Sim.Keys(laki.Sandbox, merchant) {
		if k.Metadata[rotator.MetaSecret] == name {
			out = append(out, k)
		}
	}
	return out
}
