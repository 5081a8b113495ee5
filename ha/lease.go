package ha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lakirotator/lakirotator/internal/clock"
)

// DefaultName is the lease's key in its table when none is configured; the
// Terraform's IAM condition names it.
const DefaultName = "lakirotator"

// DefaultTTL is the lease duration when none is configured.
const DefaultTTL = 15 * time.Second

// tidyAfter is how long after its last renewal DynamoDB's TTL may delete
// the item: long enough that no holder of that time can still be running.
const tidyAfter = 24 * time.Hour

// ErrFenced means this replica does not hold the lease under the token it
// asked about: another replica took it (or it was released).
var ErrFenced = errors.New("ha: the lease is held by another replica (fencing token is stale)")

// DynamoDB is the part of the DynamoDB client the lease uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Options configure a Lease.
type Options struct {
	Client DynamoDB
	Table  string
	// Name is the lease's key in the table (default "lakirotator"): one
	// table can serve several deployments.
	Name string
	// Holder names this replica; it must be unique among live replicas
	// (New appends a random suffix).
	Holder string
	TTL    time.Duration // default 15s
	// Renew is how often the holder renews (default TTL/5).
	Renew time.Duration
	// Poll is how often a replica without the lease reads it (default
	// TTL/15). It sees the last renewal at most this late, and so waits
	// TTL - 2·Poll after seeing it: it takes over from a killed holder
	// within one TTL of the holder's last renewal (package doc).
	Poll time.Duration
	// Margin is how long before the TTL the holder stops starting work,
	// counted from when it sent its last successful renewal (default
	// TTL/3). It must exceed 2·Poll: the difference is how long before
	// anyone else may take the lease the holder has stopped.
	Margin time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
}

// Lease is one replica's view of the shared lease.
type Lease struct {
	o Options

	mu         sync.Mutex
	token      int64     // the token this replica holds under, 0 when not holding
	validUntil time.Time // by this replica's clock: stop starting work from here
	seen       string    // the renewal value last read while not holding
	seenAt     time.Time // when it was first read, by this replica's clock
	seenWait   time.Duration
}

// New checks the options and fills in the defaults.
func New(o Options) (*Lease, error) {
	if o.Client == nil || o.Table == "" {
		return nil, errors.New("ha: a DynamoDB client and a table name are required")
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Renew <= 0 {
		o.Renew = o.TTL / 5
	}
	if o.Poll <= 0 {
		o.Poll = o.TTL / 15
	}
	if o.Margin <= 0 {
		o.Margin = o.TTL / 3
	}
	if o.Renew+o.Margin >= o.TTL {
		return nil, fmt.Errorf("ha: renewal every %s plus a margin of %s must be shorter than the lease TTL %s", o.Renew, o.Margin, o.TTL)
	}
	if 2*o.Poll >= o.Margin {
		return nil, fmt.Errorf("ha: a margin of %s must exceed two polls (2 × %s): a contender takes the lease TTL - 2·poll after it saw the last renewal, and the holder must have stopped by then", o.Margin, o.Poll)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Holder += "-" + randomHex(4)
	return &Lease{o: o}, nil
}

// Holder is this replica's name in the lease item.
func (l *Lease) Holder() string { return l.o.Holder }

// TTL is the lease duration.
func (l *Lease) TTL() time.Duration { return l.o.TTL }

// Hold is how long after sending a successful renewal the holder starts
// work (TTL - Margin).
func (l *Lease) Hold() time.Duration { return l.o.TTL - l.o.Margin }

// Wait is how long this replica must read one renewal value unchanged
// before it takes the lease from a holder configured as it is
// (TTL - 2·Poll): a killed holder is taken over within one TTL of its last
// renewal.
func (l *Lease) Wait() time.Duration { return l.o.TTL - 2*l.o.Poll }

// waitFor is Wait for the lease as its holder wrote it: a holder with a
// longer TTL or holding counts, so that it has stopped first.
func (l *Lease) waitFor(r record) time.Duration {
	return max(max(r.ttl, l.o.TTL)-2*l.o.Poll, r.hold+l.o.Poll)
}

// Held reports whether this replica may start work as the holder now, by
// its own clock, and under which fencing token.
func (l *Lease) Held() (token int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == 0 || !l.o.Clock.Now().Before(l.validUntil) {
		return 0, false
	}
	return l.token, true
}

type record struct {
	holder  string
	token   int64
	renewal string
	ttl     time.Duration
	hold    time.Duration
}

func (l *Lease) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"name": &types.AttributeValueMemberS{Value: l.o.Name}}
}

func (l *Lease) read(ctx context.Context) (record, bool, error) {
	out, err := l.o.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &l.o.Table, Key: l.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return record{}, false, fmt.Errorf("ha: reading lease %q in table %s: %w", l.o.Name, l.o.Table, err)
	}
	if len(out.Item) == 0 {
		return record{}, false, nil
	}
	var r record
	if v, ok := out.Item["holder"].(*types.AttributeValueMemberS); ok {
		r.holder = v.Value
	}
	if v, ok := out.Item["renewal"].(*types.AttributeValueMemberS); ok {
		r.renewal = v.Value
	}
	// A number that is not whole is refused, not read as 0: a token read
	// as 0 would fail every conditional write, and say nothing.
	var ttl, hold int64
	for attr, dst := range map[string]*int64{"token": &r.token, "ttl_ms": &ttl, "hold_ms": &hold} {
		if v, ok := out.Item[attr].(*types.AttributeValueMemberN); ok {
			if *dst, err = strconv.ParseInt(v.Value, 10, 64); err != nil {
				return record{}, false, fmt.Errorf("ha: lease %q in table %s: %s %q is not a whole number", l.o.Name, l.o.Table, attr, v.Value)
			}
		}
	}
	r.ttl, r.hold = time.Duration(ttl)*time.Millisecond, time.Duration(hold)*time.Millisecond
	return r, true, nil
}

// TryAcquire takes the lease if it is free: never created, released, or
// left unrenewed for Wait (TTL - 2·Poll) since this replica first read its
// renewal value. It reports
// whether this replica holds it afterwards.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	if _, ok := l.Held(); ok {
		return true, nil
	}
	sent := l.o.Clock.Now()
	r, exists, err := l.read(ctx)
	if err != nil {
		return false, err
	}
	renewal := randomHex(8)
	if !exists {
		token := sent.UnixMilli()
		_, err := l.o.Client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                &l.o.Table,
			Item:                     l.item(token, renewal, sent),
			ConditionExpression:      aws.String("attribute_not_exists(#n)"),
			ExpressionAttributeNames: map[string]string{"#n": "name"},
		})
		return l.took(err, token, sent)
	}
	// The holder's own settings count when they are longer than ours: a
	// replica with a shorter setting must not take a lease early.
	wait := l.waitFor(r)
	l.mu.Lock()
	// Counted from when the read came back, never from when it was sent:
	// a read sent before the renewal but served after it must not count
	// from before the holder's own count began.
	if r.renewal != l.seen {
		l.seen, l.seenAt = r.renewal, l.o.Clock.Now()
	}
	l.seenWait = wait
	waited := l.o.Clock.Now().Sub(l.seenAt)
	l.mu.Unlock()
	if r.holder != "" && waited < wait {
		return false, nil
	}
	token := r.token + 1
	_, err = l.o.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &l.o.Table,
		Key:                      l.key(),
		UpdateExpression:         aws.String("SET holder = :me, #t = :new, renewal = :r, ttl_ms = :ttl, hold_ms = :hold, expires_at = :exp"),
		ConditionExpression:      aws.String("renewal = :seen AND #t = :old"),
		ExpressionAttributeNames: map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": s(l.o.Holder), ":new": n(token), ":r": s(renewal), ":ttl": n(l.o.TTL.Milliseconds()),
			":hold": n(l.Hold().Milliseconds()), ":exp": n(sent.Add(tidyAfter).Unix()), ":seen": s(r.renewal), ":old": n(r.token),
		},
	})
	return l.took(err, token, sent)
}

func (l *Lease) took(err error, token int64, sent time.Time) (bool, error) {
	var cond *types.ConditionalCheckFailedException
	if errors.As(err, &cond) {
		return false, nil // another replica was quicker
	}
	if err != nil {
		return false, fmt.Errorf("ha: taking lease %q in table %s: %w", l.o.Name, l.o.Table, err)
	}
	l.mu.Lock()
	l.token, l.validUntil = token, sent.Add(l.Hold())
	l.mu.Unlock()
	l.o.Logger.Info("lease taken", "lease", l.o.Name, "holder", l.o.Holder, "token", token)
	return true, nil
}

func (l *Lease) item(token int64, renewal string, at time.Time) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"name": s(l.o.Name), "holder": s(l.o.Holder), "token": n(token), "renewal": s(renewal),
		"ttl_ms": n(l.o.TTL.Milliseconds()), "hold_ms": n(l.Hold().Milliseconds()), "expires_at": n(at.Add(tidyAfter).Unix()),
	}
}

// Renew extends the lease this replica holds. It fails with ErrFenced when
// another replica holds it now; this replica then holds nothing.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	token := l.token
	l.mu.Unlock()
	if token == 0 {
		return ErrFenced
	}
	sent := l.o.Clock.Now()
	err := l.Fence(ctx, token)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != token {
		return ErrFenced
	}
	switch {
	case err == nil:
		l.validUntil = sent.Add(l.Hold())
	case errors.Is(err, ErrFenced):
		l.token, l.validUntil = 0, time.Time{}
	}
	return err
}

// Fence is the fencing check: a conditional write that succeeds only while
// this replica holds the lease under token, renewing it. A stale holder is
// refused with ErrFenced, and holds nothing from then on.
func (l *Lease) Fence(ctx context.Context, token int64) error {
	now := l.o.Clock.Now()
	_, err := l.o.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &l.o.Table,
		Key:                      l.key(),
		UpdateExpression:         aws.String("SET renewal = :r, expires_at = :exp"),
		ConditionExpression:      aws.String("holder = :me AND #t = :tok"),
		ExpressionAttributeNames: map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": s(l.o.Holder), ":tok": n(token), ":r": s(randomHex(8)), ":exp": n(now.Add(tidyAfter).Unix()),
		},
	})
	var cond *types.ConditionalCheckFailedException
	if errors.As(err, &cond) {
		// Whoever asked, this replica no longer holds under token.
		l.mu.Lock()
		if l.token == token {
			l.token, l.validUntil = 0, time.Time{}
		}
		l.mu.Unlock()
		return ErrFenced
	}
	if err != nil {
		return fmt.Errorf("ha: renewing lease %q in table %s: %w", l.o.Name, l.o.Table, err)
	}
	return nil
}

// Release gives the lease up at once (on shutdown), keeping its token so
// the next holder's is higher.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	token := l.token
	l.token, l.validUntil = 0, time.Time{}
	l.mu.Unlock()
	if token == 0 {
		return nil
	}
	_, err := l.o.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &l.o.Table,
		Key:                      l.key(),
		UpdateExpression:         aws.String("SET holder = :none, renewal = :r"),
		ConditionExpression:      aws.String("holder = :me AND #t = :tok"),
		ExpressionAttributeNames: map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":none": s(""), ":me": s(l.o.Holder), ":tok": n(token), ":r": s(randomHex(8)),
		},
	})
	var cond *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cond) {
		return fmt.Errorf("ha: releasing lease %q in table %s: %w", l.o.Name, l.o.Table, err)
	}
	l.o.Logger.Info("lease released", "lease", l.o.Name, "holder", l.o.Holder, "token", token)
	return nil
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
