package secretsmanager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// ResultOK is the result a successful call is counted under.
const ResultOK = "ok"

// ForbiddenKey is the Snapshot key prefix for calls to an operation that is
// not in Operations(): "forbidden/<Operation>".
const ForbiddenKey = "forbidden"

// WriteOperations are the operations of Operations() that share AWS's write
// quota (50 per second per account and region); the others are reads.
func WriteOperations() []string {
	return []string{"PutSecretValue", "TagResource", "UpdateSecretVersionStage"}
}

// IsWrite reports whether op counts against the Secrets Manager write quota.
func IsWrite(op string) bool { return slices.Contains(WriteOperations(), op) }

// ErrForbiddenOperation is returned, in strict mode, for a call to an
// operation that is not in Operations().
var ErrForbiddenOperation = errors.New("operation is not in secretsmanager.Operations() (the IAM policy would deny it)")

// CallCounterOptions configure a CallCounter.
type CallCounterOptions struct {
	// Strict fails calls to operations not in Operations() before they are
	// sent. For tests.
	Strict bool
	// Observe, when set, is called after every call with the operation, the
	// AWS error code ("" on success) and the duration, e.g. for metrics.
	Observe func(op, errCode string, d time.Duration)
}

// CallCounter is SDK middleware that counts Secrets Manager calls per
// operation and result. Install it with APIOption. Safe for concurrent use.
type CallCounter struct {
	opts    CallCounterOptions
	allowed map[string]bool

	mu     sync.Mutex
	counts map[string]int // "<Operation>/<result>" and "forbidden/<Operation>"
}

// NewCallCounter returns an empty counter.
func NewCallCounter(opts CallCounterOptions) *CallCounter {
	allowed := map[string]bool{}
	for _, op := range Operations() {
		allowed[op] = true
	}
	return &CallCounter{opts: opts, allowed: allowed, counts: map[string]int{}}
}

// APIOption is the SDK APIOptions entry that installs the counter.
func (c *CallCounter) APIOption() func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("lakirotator.CallCounter", c.handle), middleware.Before)
	}
}

func (c *CallCounter) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	op := middleware.GetOperationName(ctx)
	if !c.allowed[op] {
		c.add(ForbiddenKey + "/" + op)
		if c.opts.Strict {
			return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("secretsmanager: %s: %w", op, ErrForbiddenOperation)
		}
	}
	start := time.Now()
	out, md, err := next.HandleInitialize(ctx, in)
	code := ErrorCode(err)
	result := code
	if err == nil {
		result = ResultOK
	}
	c.add(op + "/" + result)
	if c.opts.Observe != nil {
		c.opts.Observe(op, code, time.Since(start))
	}
	return out, md, err
}

func (c *CallCounter) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[key]++
}

// Snapshot returns a copy of the counts, keyed "<Operation>/<result>" where
// result is "ok" or the AWS error code, plus "forbidden/<Operation>".
func (c *CallCounter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Calls returns how many calls of op were made, whatever their result.
func (c *CallCounter) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.counts {
		if len(k) > len(op) && k[:len(op)] == op && k[len(op)] == '/' {
			n += v
		}
	}
	return n
}

// Total returns the number of calls sent (forbidden calls that strict mode
// stopped are not sent and not in the total).
func (c *CallCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.counts {
		if !isForbiddenKey(k) {
			n += v
		}
	}
	return n
}

// Writes returns the number of calls against the write quota.
func (c *CallCounter) Writes() int {
	n := 0
	for _, op := range WriteOperations() {
		n += c.Calls(op)
	}
	return n
}

// Forbidden returns the operations called that are not in Operations(), sorted.
func (c *CallCounter) Forbidden() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ops []string
	for k := range c.counts {
		if isForbiddenKey(k) {
			ops = append(ops, k[len(ForbiddenKey)+1:])
		}
	}
	sort.Strings(ops)
	return ops
}

func isForbiddenKey(k string) bool {
	return len(k) > len(ForbiddenKey) && k[:len(ForbiddenKey)+1] == ForbiddenKey+"/"
}

// ErrorCode returns the AWS error code of err ("" for nil, "canceled" for a
// canceled or timed-out context, "error" for failures without a code).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "canceled"
	}
	if errors.Is(err, ErrForbiddenOperation) {
		return ForbiddenKey
	}
	return "error"
}
