package eventbridge_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/eventbridge"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

type awsClients struct {
	eb  *eb.Client
	sqs *sqs.Client
	sm  *sm.Client
	ep  string
}

func startAWS(t *testing.T) awsClients {
	ep := motoserver.Start(t)
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	return awsClients{ep: ep,
		eb:  eb.New(eb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(ep), Credentials: creds}),
		sqs: sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(ep), Credentials: creds}),
		sm:  sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(ep), Credentials: creds}),
	}
}

// busToQueue makes the bus and the example rule of the Terraform module:
// everything from source lakirotator to an SQS queue. It returns the queue URL.
func busToQueue(t *testing.T, c awsClients, bus string) string {
	ctx := context.Background()
	if _, err := c.eb.CreateEventBus(ctx, &eb.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	q, err := c.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(bus + "-consumers")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.eb.PutRule(ctx, &eb.PutRuleInput{Name: aws.String("consumers"), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["lakirotator"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.eb.PutTargets(ctx, &eb.PutTargetsInput{Rule: aws.String("consumers"), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	return *q.QueueUrl
}

type received struct {
	Source     string             `json:"source"`
	DetailType string             `json:"detail-type"`
	Detail     eventbridge.Detail `json:"detail"`
	raw        string
}

func drain(t *testing.T, c awsClients, url string, want int) []received {
	var out []received
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		r, err := c.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Messages {
			var ev received
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatalf("queue message is not an EventBridge event: %v", err)
			}
			ev.raw = aws.ToString(m.Body)
			out = append(out, ev)
		}
	}
	return out
}

// The engine rotates an API key on a schedule, then on a compromise; the
// rule delivers every entry to the queue, with the fields a consumer acts
// on and no secret value anywhere.
func TestRotationEventsReachAQueueThroughARule(t *testing.T) {
	c := startAWS(t)
	url := busToQueue(t, c, "lakirotator-consumers")
	fx := lakisimtest.Start(t)
	reg := prometheus.NewRegistry()
	pub, err := eventbridge.New(eventbridge.Config{APIs: map[string]eventbridge.API{"sandbox": c.eb},
		Buses: map[string]string{"sandbox": "lakirotator-consumers"}, Registerer: reg, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bus := &events.Bus{}
	bus.Subscribe(pub)
	eng, ms, keep := rotatingEngine(t, c, fx, bus)

	ctx := context.Background()
	pol := policy()
	if _, err := eng.Rotate(ctx, ms, pol, rotator.Trigger{Kind: events.CauseScheduled, ID: "2026-06-01T09:00:00Z", Source: events.SourceSchedule, Actor: "scheduler"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Rotate(ctx, ms, pol, rotator.Trigger{Kind: events.CauseCompromise, ID: "trg_exposed1", Source: events.SourceLakiEvent, Actor: "lakiconnect", Reason: "exposed"}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := drain(t, c, url, 5)
	byType := map[string][]eventbridge.Detail{}
	for _, r := range got {
		if r.Source != "lakirotator" {
			t.Errorf("source %q", r.Source)
		}
		byType[r.DetailType] = append(byType[r.DetailType], r.Detail)
		for _, s := range keep() {
			if strings.Contains(r.raw, s.Reveal()) {
				t.Errorf("an event carries a secret value (last4 %s): %s", s.Last4(), r.DetailType)
			}
		}
	}
	promoted := byType[eventbridge.DetailPromoted]
	if len(promoted) != 2 {
		t.Fatalf("%d %q entries, want 2 (scheduled, compromise); got %v", len(promoted), eventbridge.DetailPromoted, byType)
	}
	for i, cause := range []string{"scheduled", "compromise"} {
		d := promoted[i]
		if d.SecretName != ms.Name || d.Environment != "sandbox" || d.Cause != cause || d.VersionID == "" || d.PreviousVersionID == "" || d.KeyID == "" || d.PreviousKeyID == "" {
			t.Errorf("promoted #%d: %+v", i, d)
		}
	}
	ending := byType[eventbridge.DetailOldEnding]
	if len(ending) != 2 {
		t.Fatalf("%d %q entries, want 2", len(ending), eventbridge.DetailOldEnding)
	}
	end0, err0 := time.Parse(time.RFC3339, ending[0].OldCredentialEndsAt)
	end1, err1 := time.Parse(time.RFC3339, ending[1].OldCredentialEndsAt)
	if err0 != nil || err1 != nil || !end0.Equal(fx.Clock.Now().Add(24*time.Hour).Truncate(time.Second)) || end1.After(fx.Clock.Now()) {
		t.Errorf("old credential ends: scheduled %q (want now+24h), compromise %q (want now)", ending[0].OldCredentialEndsAt, ending[1].OldCredentialEndsAt)
	}
	if comp := byType[eventbridge.DetailCompromised]; len(comp) != 1 || comp[0].TriggerID != "trg_exposed1" || comp[0].SecretName != ms.Name {
		t.Errorf("compromised entries: %+v", comp)
	}
	if n := testutil.ToFloat64(pubCounter(t, reg, "published")); int(n) != len(got) {
		t.Errorf("published counter %v, %d entries arrived", n, len(got))
	}
}

// A bus that does not exist: every attempt fails, is retried and counted,
// and the rotation succeeds all the same, without waiting for EventBridge.
func TestPublishingFailuresNeverFailARotation(t *testing.T) {
	c := startAWS(t)
	fx := lakisimtest.Start(t)
	reg := prometheus.NewRegistry()
	pub, err := eventbridge.New(eventbridge.Config{APIs: map[string]eventbridge.API{"sandbox": c.eb},
		Buses: map[string]string{"sandbox": "no-such-bus"}, Registerer: reg, Attempts: 3, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bus := &events.Bus{}
	bus.Subscribe(pub)
	eng, ms, _ := rotatingEngine(t, c, fx, bus)
	res, err := eng.Rotate(context.Background(), ms, policy(), rotator.Trigger{Kind: events.CauseScheduled, ID: "2026-06-01T09:00:00Z", Source: events.SourceSchedule})
	if err != nil {
		t.Fatalf("rotation failed with EventBridge down: %v (%+v)", err, res)
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	failed, retried := testutil.ToFloat64(pubCounter(t, reg, "failed")), testutil.ToFloat64(pubCounter(t, reg, "retried"))
	if failed != 2 || retried != 4 {
		t.Errorf("failed %v retried %v; want 2 entries failed after 3 attempts each (4 retries)", failed, retried)
	}
}

func pubCounter(t *testing.T, reg *prometheus.Registry, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lakirotator_eventbridge_entries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no lakirotator_eventbridge_entries_total{result=%q}", result)
	return nil
}

func policy() rotator.RotationPolicy {
	return rotator.RotationPolicy{Scopes: []laki.Scope{laki.ScopePaymentsRead}, DefaultGrace: 24 * time.Hour,
		Grace: map[events.Cause]time.Duration{events.CauseCompromise: 0}}
}

// rotatingEngine seeds one API key secret in moto and returns an engine on
// the real Secrets Manager store and the simulator, and a list of every
// secret value made so far (for the leak scan).
func rotatingEngine(t *testing.T, c awsClients, fx *lakisimtest.Fixture, sink events.Sink) (*rotator.Engine, inventory.ManagedSecret, func() []secret.Value) {
	t.Helper()
	ctx := context.Background()
	store, err := secretsmanager.New(ctx, secretsmanager.Config{Region: motoserver.Region, Endpoint: c.ep,
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	k, err := fx.Sim.CreateKey(laki.Sandbox, fx.MasterMerchantID, "svc", []laki.Scope{laki.ScopePaymentsRead})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "sandbox", MasterMerchantID: fx.MasterMerchantID,
		KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}.Encode()
	name := "payments/sandbox/" + strings.ToLower(t.Name())
	if _, err := c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}); err != nil {
		t.Fatal(err)
	}
	merchants := fx.SandboxMerchants(t)
	eng, err := rotator.New(rotator.Config{Store: store, Issuers: rotator.Issuers(merchants.Client, merchants.InvalidateManagementKey), Clock: fx.Clock, Events: sink,
		Logger: slog.New(slog.DiscardHandler), Verifier: webhooksig.Verifier{Clock: fx.Clock},
		Backoff: rotator.Backoff{Base: time.Second, Max: 4 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	ms := inventory.ManagedSecret{Name: name, Kind: inventory.KindAPIKey, Environment: laki.Sandbox, MasterMerchantID: fx.MasterMerchantID, Policy: "p"}
	keep := func() []secret.Value {
		out := []secret.Value{fx.SandboxKey, k.Secret}
		d, _ := store.Describe(ctx, name)
		for _, ver := range d.Versions {
			if got, err := store.Get(ctx, name, secretstore.ByID(ver.ID)); err == nil {
				if cr, err := secretstore.DecodeCredential(name, got.Value); err == nil {
					out = append(out, cr.Secret)
				}
			}
		}
		return out
	}
	return eng, ms, keep
}
