// Package eventbridge publishes rotation events for the applications that
// use the keys: after each promote and each end of an old credential, and
// when a compromise rotation starts, one entry goes to an Amazon EventBridge
// bus (PutEvents) with source "lakirotator". Consumers subscribe with a rule
// (a Lambda, an SQS queue, an ECS redeploy) and refresh their credentials.
//
// An entry carries names, ids, the cause and when the old credential ends,
// never a secret value, not even its last four characters.
//
// Publishing never blocks or fails a rotation: Emit only queues (a full
// queue drops the entry and counts it); a worker sends, retrying failed
// calls and failed entries with capped backoff, and counts every outcome in
// lakirotator_eventbridge_entries_total{result}.
package eventbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// Source is the source of every entry.
const Source = "lakirotator"

// Detail types, one per step a consumer acts on.
const (
	DetailPromoted    = "Credential Promoted"    // AWSCURRENT holds a new credential: refresh now
	DetailOldEnding   = "Old Credential Ending"  // the old credential's end is scheduled (ends_at)
	DetailOldEnded    = "Old Credential Ended"   // the old credential no longer works
	DetailCompromised = "Credential Compromised" // a compromise rotation started: the old credential ends at once
)

// API is the part of the EventBridge client the publisher calls.
type API interface {
	PutEvents(ctx context.Context, in *eb.PutEventsInput, optFns ...func(*eb.Options)) (*eb.PutEventsOutput, error)
}

// Detail is an entry's detail, as JSON. Field names are the contract with
// consumers' rules (for example {"detail": {"cause": ["compromise"]}}).
type Detail struct {
	SecretName        string `json:"secret_name"`
	Kind              string `json:"kind,omitempty"`
	Environment       string `json:"environment"`
	MasterMerchantID  string `json:"master_merchant_id,omitempty"`
	VersionID         string `json:"version_id,omitempty"`
	PreviousVersionID string `json:"previous_version_id,omitempty"`
	KeyID             string `json:"key_id,omitempty"`
	PreviousKeyID     string `json:"previous_key_id,omitempty"`
	Cause             string `json:"cause,omitempty"`
	TriggerID         string `json:"trigger_id,omitempty"`
	Grace             string `json:"grace,omitempty"`
	// OldCredentialEndsAt is when the previous credential stops working (RFC 3339).
	OldCredentialEndsAt string    `json:"old_credential_ends_at,omitempty"`
	Time                time.Time `json:"time"`
}

// Entry maps a lifecycle event to an entry's detail type and detail; ok is
// false for events consumers need not hear about.
func Entry(e events.Event) (detailType string, d Detail, ok bool) {
	switch {
	case e.Step == events.StepPromote && e.Outcome == events.OutcomeSucceeded:
		detailType = DetailPromoted
	case e.Step == events.StepRetire && e.Outcome == events.OutcomeStarted && e.Details["action"] == "end_old":
		detailType = DetailOldEnding
	case e.Step == events.StepRetire && e.Outcome == events.OutcomeSucceeded:
		detailType = DetailOldEnded
	case e.Step == events.StepRotation && e.Outcome == events.OutcomeStarted && e.Cause == events.CauseCompromise:
		detailType = DetailCompromised
	default:
		return "", Detail{}, false
	}
	d = Detail{SecretName: e.Secret, Kind: e.Kind, Environment: e.Environment, MasterMerchantID: e.MasterMerchantID,
		VersionID: e.VersionID, PreviousVersionID: e.PreviousVersionID, KeyID: e.KeyID, PreviousKeyID: e.PreviousKeyID,
		Cause: string(e.Cause), TriggerID: e.TriggerID, Grace: e.Details["grace"], OldCredentialEndsAt: e.Details["ends_at"],
		Time: e.Time.UTC()}
	return detailType, d, true
}

// Config configures a Publisher.
type Config struct {
	// APIs holds one client per environment (sandbox, production), each in
	// that environment's account; events of other environments are not published.
	APIs map[string]API
	// Buses holds the bus name or ARN per environment.
	Buses map[string]string
	// Attempts per entry (first try included); zero means 8.
	Attempts int
	// Backoff is the first wait between attempts, doubled up to 30 s; zero means 500 ms.
	Backoff time.Duration
	// QueueSize bounds the entries waiting; zero means 1000.
	QueueSize int
	Clock     clock.Clock
	Logger    *slog.Logger
	// Registerer receives the counter; nil registers nothing.
	Registerer prometheus.Registerer
}

type entry struct {
	env    string
	dtype  string
	detail []byte
	at     time.Time
}

// Publisher is an events.Sink that publishes to EventBridge.
type Publisher struct {
	cfg     Config
	queue   chan entry
	entries *prometheus.CounterVec
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New starts a Publisher; Close stops it.
func New(cfg Config) (*Publisher, error) {
	if cfg.Attempts <= 0 {
		cfg.Attempts = 8
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for env := range cfg.APIs {
		if cfg.Buses[env] == "" {
			return nil, fmt.Errorf("eventbridge: environment %s has a client but no bus", env)
		}
	}
	p := &Publisher{cfg: cfg, queue: make(chan entry, cfg.QueueSize), stop: make(chan struct{}), done: make(chan struct{}),
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_eventbridge_entries_total",
			Help: "Rotation events for consumers, by result: published, retried (one per failed attempt), failed (attempts exhausted), dropped (queue full or stopping).",
		}, []string{"result"})}
	for _, r := range []string{"published", "retried", "failed", "dropped"} {
		p.entries.WithLabelValues(r)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(p.entries); err != nil {
			return nil, fmt.Errorf("eventbridge: %w", err)
		}
	}
	go p.run()
	return p, nil
}

// Emit queues the entry for the event, if consumers need it. It never blocks.
func (p *Publisher) Emit(_ context.Context, e events.Event) {
	dtype, d, ok := Entry(e)
	if !ok {
		return
	}
	if _, ok := p.cfg.APIs[e.Environment]; !ok {
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	select {
	case p.queue <- entry{env: e.Environment, dtype: dtype, detail: b, at: d.Time}:
	default:
		p.entries.WithLabelValues("dropped").Inc()
		p.cfg.Logger.Warn("eventbridge: queue full, entry dropped", "secret", e.Secret, "detail_type", dtype)
	}
}

// Close stops taking entries and waits, until ctx ends, for those queued.
func (p *Publisher) Close(ctx context.Context) error {
	p.once.Do(func() { close(p.stop) })
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("eventbridge: %d entries not published: %w", len(p.queue), ctx.Err())
	}
}

func (p *Publisher) run() {
	defer close(p.done)
	for {
		select {
		case en := <-p.queue:
			p.publish(en)
		case <-p.stop:
			for {
				select {
				case en := <-p.queue:
					p.publish(en)
				default:
					return
				}
			}
		}
	}
}

// publish sends one entry until it is accepted or the attempts run out.
// A rejected entry (FailedEntryCount) is retried as a failed call is.
func (p *Publisher) publish(en entry) {
	wait := p.cfg.Backoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := p.cfg.APIs[en.env].PutEvents(ctx, &eb.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			Source: aws.String(Source), DetailType: aws.String(en.dtype), Detail: aws.String(string(en.detail)),
			EventBusName: aws.String(p.cfg.Buses[en.env]), Time: aws.Time(en.at),
		}}})
		cancel()
		if err == nil && out.FailedEntryCount > 0 && len(out.Entries) > 0 {
			err = fmt.Errorf("entry refused: %s", aws.ToString(out.Entries[0].ErrorCode))
		}
		if err == nil {
			p.entries.WithLabelValues("published").Inc()
			return
		}
		if attempt >= p.cfg.Attempts {
			p.entries.WithLabelValues("failed").Inc()
			p.cfg.Logger.Error("eventbridge: entry not published", "detail_type", en.dtype, "environment", en.env, "attempts", attempt, "error", err)
			return
		}
		p.entries.WithLabelValues("retried").Inc()
		p.cfg.Logger.Warn("eventbridge: publishing failed, retrying", "detail_type", en.dtype, "attempt", attempt, "error", err)
		select {
		case <-p.cfg.Clock.After(wait):
		case <-p.stop:
			// Stopping: one last try happens on the next loop without waiting.
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// Operations lists the EventBridge API operations the publisher calls; the
// Terraform module consumer-events grants exactly these (a test holds the
// two equal).
func Operations() []string { return []string{"PutEvents"} }
