package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// SignatureHeader is the header LakiConnect signs deliveries with.
const SignatureHeader = "X-LakiConnect-Signature"

// DefaultMinRefreshInterval spaces the refreshes that a delivery signed with
// unknown secrets causes, so that forged deliveries cannot turn into a flood
// of Secrets Manager reads.
const DefaultMinRefreshInterval = time.Second

// DefaultPreviousGrace is how long AWSPREVIOUS is accepted after this
// Verifier first saw its version become previous, when no grace is given.
const DefaultPreviousGrace = time.Hour

// tagIntent is the tag in which the rotator keeps a trigger's intent on the
// secret ("<cause> <trigger id> <unix> <source>..."). A compromise there
// means the previous secret is exposed: it is never accepted.
const tagIntent = "lakirotator:intent"

// Errors of Verify beyond webhooksig's (ErrMalformedHeader,
// ErrTimestampOutOfTolerance, ErrNoValidSignature); test with errors.Is.
var (
	ErrMalformedBody = errors.New("consumer: delivery body is not a LakiConnect event")
	ErrWrongMerchant = errors.New("consumer: delivery is for another master merchant")
	ErrDuplicate     = errors.New("consumer: delivery already processed (same idempotency_key)")
	ErrNoSecrets     = errors.New("consumer: no signing secret could be read yet")
)

// Event is a verified delivery body.
type Event struct {
	ID               string          `json:"id"`
	Type             string          `json:"type"`
	Created          int64           `json:"created"`
	MasterMerchantID string          `json:"master_merchant_id"`
	Environment      string          `json:"environment"`
	IdempotencyKey   string          `json:"idempotency_key"`
	Data             json.RawMessage `json:"data"`
}

// Deduper remembers processed deliveries by idempotency_key (LakiConnect
// delivers at least once). Seen is asked before processing, Remember after
// processing succeeded, so a delivery that failed is processed again when
// it is redelivered. Back it with a shared store (DynamoDB, Redis) when
// several replicas receive. The Handler answers 200 to a processed delivery
// even when Remember fails (a 500 would process it again): log the failure
// in Remember.
type Deduper interface {
	Seen(ctx context.Context, idempotencyKey string) (bool, error)
	Remember(ctx context.Context, idempotencyKey string) error
}

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// MasterMerchantID is the master merchant the endpoint belongs to;
	// deliveries naming another are refused. Empty: the stored secret's.
	MasterMerchantID string
	// Dedup drops redeliveries; nil means no deduplication.
	Dedup Deduper
	// Clock is the receiver's clock (timestamps, TTL, grace); nil means the system clock.
	Clock clock.Clock
	// Tolerance is how far t may be from now; zero means 300 s.
	Tolerance time.Duration
	// TTL bounds how long the held secrets are used before they are read
	// again; zero means DefaultTTL.
	TTL time.Duration
	// MinRefreshInterval spaces refreshes caused by unknown signatures;
	// zero means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// PreviousGrace is how long AWSPREVIOUS is accepted after this Verifier
	// saw it become previous (set it to the policy's grace); zero means
	// DefaultPreviousGrace, negative means never.
	PreviousGrace time.Duration
}

// Verifier verifies deliveries to one webhook endpoint whose signing secret
// the rotator manages. Safe for concurrent use.
type Verifier struct {
	name   string
	client SecretsManagerClient
	opts   VerifierOptions
	clk    clock.Clock
	sig    webhooksig.Verifier

	refreshMu sync.Mutex // one refresh at a time; later callers reuse its result
	mu        sync.Mutex
	held      snapshot
	// gen counts finished refreshes, so callers queued behind one reuse it.
	gen uint64
	// lastTry is wall-clock time: the spacing protects Secrets Manager's
	// quota, which is counted in real time whatever clock the tests inject.
	lastTry time.Time
	// previousSince: when each version was first seen as AWSPREVIOUS.
	previousSince map[string]time.Time
}

// snapshot is the signing secrets read from one DescribeSecret.
type snapshot struct {
	at         time.Time
	byVersion  map[string]secretstore.Credential
	current    string
	pending    string
	previous   string
	compromise bool
}

// NewVerifier verifies against the signing secret stored in secretName.
func NewVerifier(client SecretsManagerClient, secretName string, opts VerifierOptions) (*Verifier, error) {
	if client == nil || secretName == "" {
		return nil, errors.New("consumer: NewVerifier needs a client and a secret name")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if opts.PreviousGrace == 0 {
		opts.PreviousGrace = DefaultPreviousGrace
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	return &Verifier{name: secretName, client: client, opts: opts, clk: clk,
		sig:           webhooksig.Verifier{Clock: clk, Tolerance: opts.Tolerance},
		previousSince: map[string]time.Time{}}, nil
}

// Verify checks one delivery, in the order LakiConnect's contract gives:
// the header strictly, the timestamp within tolerance, any v1 against any
// live secret in constant time, then the master merchant, then the
// idempotency key (ErrDuplicate for a delivery already processed). When no
// held secret matches, the secrets are read again at once and the check is
// repeated. Call Remember once the event is processed.
func (v *Verifier) Verify(ctx context.Context, header string, body []byte) (Event, error) {
	if _, err := webhooksig.ParseHeader(header); err != nil {
		return Event{}, err
	}
	snap, err := v.secrets(ctx, false)
	if err != nil && len(snap.byVersion) == 0 {
		return Event{}, err
	}
	err = v.sig.Verify(header, body, v.live(snap)...)
	if errors.Is(err, webhooksig.ErrNoValidSignature) {
		// Signed with secrets newer than ours: a rotation went on since.
		if fresh, ferr := v.secrets(ctx, true); ferr == nil || len(fresh.byVersion) > 0 {
			snap = fresh
			err = v.sig.Verify(header, body, v.live(snap)...)
		}
	}
	if err != nil {
		return Event{}, err
	}
	var ev Event
	if jerr := json.Unmarshal(body, &ev); jerr != nil || ev.IdempotencyKey == "" || ev.MasterMerchantID == "" {
		return Event{}, fmt.Errorf("%w: needs master_merchant_id and idempotency_key", ErrMalformedBody)
	}
	want := v.opts.MasterMerchantID
	if want == "" {
		want = snap.merchant()
	}
	if ev.MasterMerchantID != want {
		return Event{}, fmt.Errorf("%w: %s, this endpoint is %s's", ErrWrongMerchant, ev.MasterMerchantID, want)
	}
	if v.opts.Dedup != nil {
		seen, err := v.opts.Dedup.Seen(ctx, ev.IdempotencyKey)
		if err != nil {
			return Event{}, fmt.Errorf("consumer: dedup: %w", err)
		}
		if seen {
			return ev, fmt.Errorf("%w: %s", ErrDuplicate, ev.IdempotencyKey)
		}
	}
	return ev, nil
}

// Remember records a processed delivery with the Deduper, if any.
func (v *Verifier) Remember(ctx context.Context, ev Event) error {
	if v.opts.Dedup == nil {
		return nil
	}
	return v.opts.Dedup.Remember(ctx, ev.IdempotencyKey)
}

// Refresh reads the signing secrets now (on a rotation event, for one).
// On failure the secrets held stay in use.
func (v *Verifier) Refresh(ctx context.Context) error {
	_, err := v.secrets(ctx, true)
	return err
}

// live lists the secrets a delivery may be signed with now.
func (v *Verifier) live(s snapshot) []secret.Value {
	var out []secret.Value
	for _, id := range []string{s.current, s.pending} {
		if c, ok := s.byVersion[id]; ok && id != "" {
			out = append(out, c.Secret)
		}
	}
	if s.previous == "" || s.compromise || v.opts.PreviousGrace < 0 {
		return out
	}
	v.mu.Lock()
	since, ok := v.previousSince[s.previous]
	v.mu.Unlock()
	if c, held := s.byVersion[s.previous]; held && ok && v.clk.Now().Before(since.Add(v.opts.PreviousGrace)) {
		out = append(out, c.Secret)
	}
	return out
}

func (s snapshot) merchant() string {
	if c, ok := s.byVersion[s.current]; ok {
		return c.MasterMerchantID
	}
	return ""
}

// secrets returns the held snapshot, reading it again when it is older than
// the TTL or when force is set (then at most once per MinRefreshInterval,
// waiting for the interval rather than failing). Callers arriving while a
// refresh runs wait for it and take its result. A failed read returns the
// error with the snapshot held.
func (v *Verifier) secrets(ctx context.Context, force bool) (snapshot, error) {
	v.mu.Lock()
	held, gen := v.held, v.gen
	v.mu.Unlock()
	if !force && !held.at.IsZero() && v.clk.Now().Sub(held.at) < v.opts.TTL {
		return held, nil
	}
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	v.mu.Lock()
	held, last, again := v.held, v.lastTry, v.gen != gen
	v.mu.Unlock()
	if again {
		return held, nil // a refresh started after we asked has finished
	}
	if force && !last.IsZero() {
		if wait := time.Until(last.Add(v.opts.MinRefreshInterval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return held, ctx.Err()
			}
		}
	}
	snap, err := v.read(ctx, held)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastTry = time.Now()
	v.gen++
	if err != nil {
		if len(held.byVersion) == 0 {
			return held, fmt.Errorf("%w: %v", ErrNoSecrets, err)
		}
		return held, err
	}
	v.held = snap
	if snap.previous != "" {
		if _, ok := v.previousSince[snap.previous]; !ok {
			v.previousSince[snap.previous] = snap.at
		}
	}
	for id := range v.previousSince {
		if id != snap.previous {
			delete(v.previousSince, id)
		}
	}
	return snap, nil
}

// read takes one DescribeSecret and reads the versions of the live stages
// that held does not have yet (a version's value never changes).
func (v *Verifier) read(ctx context.Context, held snapshot) (snapshot, error) {
	d, err := v.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: &v.name})
	if err != nil {
		return snapshot{}, fmt.Errorf("consumer: describing %s: %w", v.name, err)
	}
	s := snapshot{at: v.clk.Now(), byVersion: map[string]secretstore.Credential{}}
	for id, stages := range d.VersionIdsToStages {
		for _, st := range stages {
			switch st {
			case secretstore.StageCurrent:
				s.current = id
			case secretstore.StagePending:
				s.pending = id
			case secretstore.StagePrevious:
				s.previous = id
			}
		}
	}
	for _, t := range d.Tags {
		if t.Key != nil && *t.Key == tagIntent && t.Value != nil {
			cause, _, _ := strings.Cut(*t.Value, " ")
			s.compromise = cause == "compromise"
		}
	}
	if s.current == "" {
		return snapshot{}, fmt.Errorf("consumer: %s has no AWSCURRENT version", v.name)
	}
	for _, id := range []string{s.current, s.pending, s.previous} {
		if id == "" {
			continue
		}
		if _, done := s.byVersion[id]; done {
			continue
		}
		if c, ok := held.byVersion[id]; ok {
			s.byVersion[id] = c
			continue
		}
		out, err := v.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &v.name, VersionId: ptr(id)})
		if err != nil {
			return snapshot{}, fmt.Errorf("consumer: reading %s version %s: %w", v.name, id, err)
		}
		if out.SecretString == nil {
			return snapshot{}, fmt.Errorf("consumer: %s version %s holds no string", v.name, id)
		}
		c, err := decode(v.name, secret.New(*out.SecretString), secretstore.TypeWebhookSecret)
		if err != nil {
			return snapshot{}, err
		}
		s.byVersion[id] = c
	}
	return s, nil
}
