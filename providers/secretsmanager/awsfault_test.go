package secretsmanager

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretsmanager/awsfault"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
)

// Why: moto accepts a reused token with another value and puts to secrets
// scheduled for deletion, where AWS rejects both (MOTO.md). With the
// stand-in the server answers those cases as AWS does, so this run holds
// the store to the suite against AWS's behaviour as the plain run does
// against moto's. (The store's own look-up before a put makes both pass;
// TestTokenRaceLoserGetsTokenReused covers the window it cannot close.)
func TestConformanceAgainstMotoWithAWSFaults(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		inj := awsfault.New(awsfault.Config{TokenReuse: true, Deletion: true})
		s, _ := newMotoStore(t, WithAPIOptions(inj.APIOption()))
		return seedHarness(s, seedClient(t, inj.ClientOption()))
	})
}

// Why: moto accepts stage moves on a secret scheduled for deletion; AWS
// answers InvalidRequestException, which must map to ErrScheduledForDeletion.
func TestMoveStageOnDeletedSecret(t *testing.T) {
	ctx := context.Background()
	inj := awsfault.New(awsfault.Config{Deletion: true})
	seed := seedClient(t, inj.ClientOption())
	name := unique("deleted-move")
	out, err := seed.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("value-of-deleted-secret")})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newMotoStore(t, WithAPIOptions(inj.APIOption()))
	if err := s.PutPending(ctx, name, "44444444444444444444444444444444", secret.New("pending-of-deleted-secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	err = s.MoveStage(ctx, name, secretstore.StageCurrent, "44444444444444444444444444444444", aws.ToString(out.VersionId))
	if !errors.Is(err, secretstore.ErrScheduledForDeletion) {
		t.Fatalf("MoveStage on a deleted secret = %v, want ErrScheduledForDeletion", err)
	}
}

// Why: moto never throttles. The stand-in applies AWS's write quota; the
// store reports ErrThrottled once the SDK's retries are spent, and the
// call accounting records AWS's error code.
func TestThrottlingAboveTheWriteQuota(t *testing.T) {
	ctx := context.Background()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	inj := awsfault.New(awsfault.Config{WriteRate: 1, WriteBurst: 2, Clock: fake})
	seed := seedClient(t)
	name := unique("throttle")
	if _, err := seed.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	counter := NewCallCounter(CallCounterOptions{Strict: true})
	s, err := New(ctx, Config{Region: "us-east-1", Endpoint: moto.Endpoint(t), Credentials: motoCredentials(), MaxAttempts: 1},
		WithCallCounter(counter), WithAPIOptions(inj.APIOption()))
	if err != nil {
		t.Fatal(err)
	}
	tag := map[string]string{"attempt": "1"}
	for i := range 2 {
		if err := s.Tag(ctx, name, tag); err != nil {
			t.Fatalf("write %d within the burst: %v", i+1, err)
		}
	}
	// Reads have their own quota, not configured here.
	if _, err := s.Describe(ctx, name); err != nil {
		t.Fatalf("read while writes are throttled: %v", err)
	}
	err = s.Tag(ctx, name, tag)
	if !errors.Is(err, secretstore.ErrThrottled) {
		t.Fatalf("third write in the same instant = %v, want ErrThrottled", err)
	}
	if got := counter.Snapshot()["TagResource/ThrottlingException"]; got != 1 {
		t.Errorf("counter = %v, want one TagResource/ThrottlingException", counter.Snapshot())
	}
	fake.Advance(time.Second)
	if err := s.Tag(ctx, name, tag); err != nil {
		t.Errorf("write a second later: %v", err)
	}
}
