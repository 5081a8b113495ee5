package zerodowntime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/consumer"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

const (
	rotations = 50 // of each secret: scheduled, then one compromise, then one personnel trigger
	callers   = 4  // consumer goroutines calling /whoami, each with its own APIKey
	// callEvery keeps the callers, who share one key, under LakiConnect's
	// 100 calls/s per key (the simulator enforces it).
	callEvery = 50 * time.Millisecond
	grace     = 30 * time.Second // on the fake clock; moved past after every round
)

var scopes = []laki.Scope{laki.ScopePaymentsRead}

// Consumers on package consumer, calling LakiConnect with Key and
// verifying deliveries with Verifier, see no failed call and no rejected
// delivery while the engine rotates their API key and their endpoint's
// signing secret 50 times each against moto and the simulator; the key
// exposed before the compromise stops working as soon as the compromise
// rotation returns.
func TestConsumersSeeNoDowntimeThroughRotations(t *testing.T) {
	ctx := context.Background()
	var (
		rejected  atomic.Int64
		verified  atomic.Int64
		rejection = make(chan string, 100)
	)
	fx := lakisimtest.Start(t, lakisimtest.WithOptions(func(o *lakisim.Options) {
		// A rejected delivery must show as one: no retries to hide it.
		o.DeliveryAttempts = 1
	}))
	clk := fx.Clock

	endpoint := motoserver.Start(t)
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	smc := sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	store, err := secretsmanager.New(ctx, secretsmanager.Config{Region: motoserver.Region, Endpoint: endpoint, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}

	// The receiving application: its verifier holds only what it read.
	var verifier *consumer.Verifier
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := verifier.Verify(r.Context(), r.Header.Get(consumer.SignatureHeader), body)
		if err != nil {
			rejected.Add(1)
			select {
			case rejection <- err.Error():
			default:
			}
			http.Error(w, "rejected", http.StatusBadRequest)
			return
		}
		_ = verifier.Remember(r.Context(), ev)
		verified.Add(1)
	}))
	t.Cleanup(receiver.Close)

	// The two managed secrets, as a team onboards them.
	apiName, hookName := "payments/sandbox/checkout-api-key", "payments/sandbox/checkout-webhook"
	k, err := fx.Sim.CreateKey(laki.Sandbox, fx.MasterMerchantID, "checkout", scopes)
	if err != nil {
		t.Fatal(err)
	}
	ep, ws, err := fx.Sim.AddWebhookEndpoint(laki.Sandbox, fx.MasterMerchantID, receiver.URL, []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]secretstore.Credential{
		apiName: {Type: secretstore.TypeAPIKey, Environment: "sandbox", MasterMerchantID: fx.MasterMerchantID, KeyID: k.ID, Secret: k.Secret, Scopes: []string{string(scopes[0])}, CreatedAt: k.CreatedAt},
		hookName: {Type: secretstore.TypeWebhookSecret, Environment: "sandbox", MasterMerchantID: fx.MasterMerchantID, EndpointID: ep.ID,
			SecretID: ws.ID, Secret: ws.Secret, CreatedAt: ws.CreatedAt},
	} {
		v, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := smc.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}); err != nil {
			t.Fatal(err)
		}
	}
	verifier, err = consumer.NewVerifier(smc, hookName, consumer.VerifierOptions{Clock: clk, TTL: time.Minute,
		MinRefreshInterval: 10 * time.Millisecond, PreviousGrace: grace, Dedup: consumer.NewMemoryDeduper(time.Hour, clk)})
	if err != nil {
		t.Fatal(err)
	}

	// The calling applications.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	failures := make(chan string, 100)
	for i := range callers {
		key, err := consumer.NewAPIKey(smc, apiName, consumer.APIKeyOptions{TTL: time.Duration(1+i) * 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: key.Transport(nil), Timeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(callEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				calls.Add(1)
				resp, err := client.Get(fx.SandboxURL + "/whoami")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					select {
					case failures <- fmt.Sprintf("caller %d: %v %v", i, err, status(resp)):
					default:
					}
				}
			}
		}()
	}
	// A steady stream of deliveries besides the rotations' own events: a
	// throw-away key made and revoked sends api_key.revoked to the endpoint.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			tk, err := fx.Sim.CreateKey(laki.Sandbox, fx.MasterMerchantID, fmt.Sprintf("noise-%d", n), scopes)
			if err == nil {
				_ = fx.Sim.RevokeKey(tk.ID, "revoked_by_dashboard")
			}
		}
	}()

	// LakiConnect counts per key in real time: the engine's client keeps under its 100/s.
	merchants := fx.SandboxMerchants(t, func(c *lakiconnect.Config) { c.RateLimit, c.RateBurst = 80, 10 })
	eng, err := rotator.New(rotator.Config{Store: store, Issuers: rotator.Issuers(merchants.Client, merchants.InvalidateManagementKey), Clock: clk, Events: &events.Recorder{},
		Logger: slog.New(slog.DiscardHandler), Verifier: webhooksig.Verifier{Clock: clk},
		Backoff: rotator.Backoff{Base: time.Second, Max: 4 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	pol := rotator.RotationPolicy{Scopes: scopes, DefaultGrace: grace,
		Grace: map[events.Cause]time.Duration{events.CauseCompromise: 0, events.CausePersonnel: grace}}
	apiMS := inventory.ManagedSecret{Name: apiName, Kind: inventory.KindAPIKey, Environment: laki.Sandbox, MasterMerchantID: fx.MasterMerchantID, Policy: "p"}
	hookMS := inventory.ManagedSecret{Name: hookName, Kind: inventory.KindWebhookSecret, Environment: laki.Sandbox,
		MasterMerchantID: fx.MasterMerchantID, EndpointID: ep.ID, Policy: "p"}

	start := time.Now()
	for round := 1; round <= rotations; round++ {
		cause := rotator.Trigger{Kind: events.CauseScheduled, ID: clk.Now().UTC().Format(time.RFC3339), Source: events.SourceSchedule, Actor: "scheduler"}
		var exposed laki.APIKey
		switch round {
		case rotations - 1:
			cur := current(t, ctx, store, apiName)
			if _, err := fx.Sim.ExposeKey(cur.KeyID, "public_repository", ""); err != nil {
				t.Fatal(err)
			}
			exposed.ID = cur.KeyID
			cause = rotator.Trigger{Kind: events.CauseCompromise, ID: fmt.Sprintf("trg_compromise%02d", round), Source: events.SourceLakiEvent, Actor: "lakiconnect", Reason: "exposed"}
			exposedSecret := cur.Secret
			for _, ms := range []inventory.ManagedSecret{apiMS, hookMS} {
				if _, err := eng.Rotate(ctx, ms, pol, cause); err != nil {
					t.Fatalf("round %d (%s) %s: %v", round, cause.Kind, ms.Name, err)
				}
			}
			// The exposed key stops working at once: no grace, no cache.
			direct, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: fx.SandboxURL, APIKey: exposedSecret, MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := direct.WhoAmI(ctx); err == nil {
				t.Fatalf("the exposed key %s still works after the compromise rotation", exposed.ID)
			}
			clk.Advance(grace + time.Second)
			continue
		case rotations:
			cause = rotator.Trigger{Kind: events.CausePersonnel, ID: fmt.Sprintf("trg_personnel%02d", round), Source: events.SourceCLI, Actor: "alice", Reason: "bob left"}
		}
		for _, ms := range []inventory.ManagedSecret{apiMS, hookMS} {
			if _, err := eng.Rotate(ctx, ms, pol, cause); err != nil {
				t.Fatalf("round %d (%s) %s: %v", round, cause.Kind, ms.Name, err)
			}
		}
		// Past the grace: the old key and the old secret end at LakiConnect.
		clk.Advance(grace + time.Second)
		time.Sleep(30 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond) // the last deliveries land
	close(stop)
	wg.Wait()
	fx.Sim.Close()

	t.Logf("%d rotations of each secret in %s; %d calls, %d failed; %d deliveries verified, %d rejected",
		rotations, took.Round(time.Millisecond), calls.Load(), failed.Load(), verified.Load(), rejected.Load())
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	close(rejection)
	for r := range rejection {
		t.Error("rejected delivery:", r)
	}
	if calls.Load() < int64(callers*10) || verified.Load() < rotations {
		t.Fatalf("only %d calls and %d deliveries: the consumers were not exercised", calls.Load(), verified.Load())
	}
	for _, d := range fx.Sim.Deliveries() {
		// A delivery still on the wire when the simulator closed above was
		// cut off by the test's own teardown, not refused by the consumer.
		if !d.Succeeded() && d.StatusCode == 0 && strings.Contains(d.Error, context.Canceled.Error()) {
			continue
		}
		if !d.Succeeded() {
			t.Errorf("delivery %s (%s) attempt %d: status %d %s", d.EventID, d.EventType, d.Attempt, d.StatusCode, d.Error)
		}
	}
	// Every version the rotator wrote ended up used: 50 rotations, 50 new keys.
	keys := 0
	for _, key := range fx.Sim.Keys(laki.Sandbox, fx.MasterMerchantID) {
		if key.Metadata[rotator.MetaSecret] == apiName {
			keys++
		}
	}
	if keys != rotations {
		t.Errorf("%d keys made for %s, want %d", keys, apiName, rotations)
	}
}

func current(t *testing.T, ctx context.Context, store secretstore.Store, name string) secretstore.Credential {
	t.Helper()
	v, err := store.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		t.Fatal(err)
	}
	c, err := secretstore.DecodeCredential(name, v.Value)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(r *http.Response) string {
	if r == nil {
		return ""
	}
	return r.Status
}
