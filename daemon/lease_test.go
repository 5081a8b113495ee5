package daemon_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/ha"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/rotator"
)

// withLease gives the world's config a lease table in a fresh moto. The
// TTL is a minute: eventually moves the fake clock a second every 15ms, so
// a shorter one would expire under a slow machine's scheduling.
func withLease(t *testing.T, w *world) (endpoint string) {
	t.Helper()
	endpoint = motoserver.Start(t)
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": motoserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY": motoserver.SecretAccessKey,
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"} {
		t.Setenv(k, v)
	}
	c := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")})
	if err := ha.CreateTable(context.Background(), c, "lakirotator-lease"); err != nil {
		t.Fatal(err)
	}
	w.cfgYAML = append(w.cfgYAML, fmt.Sprintf("ha: {kind: dynamodb, table: lakirotator-lease, region: %s, endpoint: %q, ttl: 60s}\n", motoserver.Region, endpoint)...)
	return endpoint
}

func holders(rs ...*running) (n int, holder, other *running) {
	for _, r := range rs {
		if r.svc.Daemon.Holding() {
			n++
			holder = r
		} else {
			other = r
		}
	}
	return n, holder, other
}

// Two replicas share a lease: only the holder runs the scheduled slot; when
// it stops, the other takes the lease and runs the next one.
func TestLeaseHolderAloneRunsTheSlotAndTheOtherTakesOver(t *testing.T) {
	w := newWorld(t, worldOptions{})
	withLease(t, w)
	// Start near the slot: a jump of the clock by hours would outlast the
	// lease (as a paused process's would).
	now := w.clk.Now()
	slot := time.Date(now.Year(), now.Month(), now.Day()+1, 3, 0, 0, 0, time.UTC)
	w.clk.Set(slot.Add(-time.Minute))
	r1 := w.run(w.build(rotator.Hooks{}), w.ln)
	r2 := w.run(w.build(rotator.Hooks{}), nil)
	w.eventually("one replica holds the lease", func() bool { n, _, _ := holders(r1, r2); return n == 1 })
	_, holder, other := holders(r1, r2)

	scheduled := func(r *running, name string) []events.Event {
		return eventsWhere(r.rec, func(e events.Event) bool {
			return e.Secret == name && e.Cause == events.CauseScheduled && e.Step == events.StepRotation && e.Outcome != events.OutcomeStarted
		})
	}
	w.eventually("the holder runs the checkout slot", func() bool { return len(scheduled(holder, secCheckout)) > 0 })
	w.remember(w.current(secCheckout).Secret)
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if got := scheduled(other, secCheckout); len(got) != 0 {
		t.Errorf("the replica without the lease ran the slot too: %+v", got)
	}
	if n, _, _ := holders(r1, r2); n != 1 {
		t.Errorf("%d replicas hold the lease", n)
	}

	holder.stop() // an orderly stop releases the lease at once
	w.eventually("the other replica takes the lease", func() bool { return other.svc.Daemon.Holding() })
	// The reporting slot is an hour on: the new holder renews on the way.
	for w.clk.Now().Before(slot.Add(time.Hour - 10*time.Second)) {
		time.Sleep(time.Millisecond)
		w.clk.Advance(time.Second)
	}
	w.eventually("the new holder runs the reporting slot", func() bool { return len(scheduled(other, secReporting)) > 0 })
	w.remember(w.current(secReporting).Secret)
	if !other.svc.Daemon.Holding() {
		t.Errorf("the new holder lost the lease while time moved on")
	}
	if n := len(keysFor(w, secCheckout)); n != 2 {
		t.Errorf("%d keys for %s; want the old and one new", n, secCheckout)
	}
}

// A holder whose lease was taken while it did not notice (paused,
// partitioned) starts nothing: the fencing write before the slot, or its
// next renewal, is refused, and the slot does not run there.
func TestLeaseTakenAwayStopsTheSlotOnTheOldHolder(t *testing.T) {
	w := newWorld(t, worldOptions{})
	endpoint := withLease(t, w)
	now := w.clk.Now()
	slot := time.Date(now.Year(), now.Month(), now.Day()+1, 3, 0, 0, 0, time.UTC)
	// The slot comes before the next renewal (every 20s): the fencing
	// write is what stops it.
	w.clk.Set(slot.Add(-12 * time.Second))
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	// The lease is tried at once; the clock moves only while it stays
	// short of the slot, so a slow start (a loaded machine) cannot let the
	// slot come due before the lease is taken away.
	for deadline := time.Now().Add(15 * time.Second); !r.svc.Daemon.Holding(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting until the replica holds the lease")
		}
		time.Sleep(15 * time.Millisecond)
		if w.clk.Now().Before(slot.Add(-2 * time.Second)) {
			w.clk.Advance(time.Second)
		}
	}
	before := w.current(secCheckout).KeyID

	// Another replica takes the lease behind its back: a new holder and a
	// higher token, as ha does on a takeover.
	c := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")})
	_, err := c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String("lakirotator-lease"),
		Key:                       map[string]types.AttributeValue{"name": &types.AttributeValueMemberS{Value: ha.DefaultName}},
		UpdateExpression:          aws.String("SET holder = :other, #t = #t + :one, renewal = :r"),
		ExpressionAttributeNames:  map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":other": &types.AttributeValueMemberS{Value: "another-replica"}, ":one": &types.AttributeValueMemberN{Value: "1"}, ":r": &types.AttributeValueMemberS{Value: "stolen"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Past the slot, but short of one TTL after the theft (when this
	// replica could take the lease back and would rightly run the slot).
	for w.clk.Now().Before(slot.Add(5 * time.Second)) {
		time.Sleep(15 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	time.Sleep(200 * time.Millisecond)
	if got := eventsWhere(r.rec, func(e events.Event) bool {
		return e.Secret == secCheckout && e.Cause == events.CauseScheduled && e.Step == events.StepRotation
	}); len(got) != 0 {
		t.Errorf("the replica whose lease was taken ran the slot: %+v", got)
	}
	if w.current(secCheckout).KeyID != before {
		t.Errorf("the checkout key changed on a replica without the lease")
	}
	if r.svc.Daemon.Holding() {
		t.Errorf("the replica still believes it holds the lease")
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "lease lost: starting no more scheduled work") && !strings.Contains(logs, "fencing check refused") {
		t.Errorf("nothing says the lease was lost:\n%s", logs)
	}
}
