package secretsmanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
)

// One moto_server for the package; tests isolate by unique names.
var moto motoserver.Shared

func TestMain(m *testing.M) { os.Exit(moto.Run(m)) }

func motoCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
}

// newMotoStore returns a store on moto whose calls are counted in strict
// mode: a call outside Operations() fails the test's call.
func newMotoStore(t *testing.T, opts ...Option) (*Store, *CallCounter) {
	t.Helper()
	counter := NewCallCounter(CallCounterOptions{Strict: true})
	s, err := New(context.Background(), Config{
		Region: motoserver.Region, Endpoint: moto.Endpoint(t), Credentials: motoCredentials(), MaxAttempts: 2,
	}, append([]Option{WithCallCounter(counter)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f := counter.Forbidden(); len(f) > 0 {
			t.Errorf("the store called operations outside Operations(): %v", f)
		}
	})
	return s, counter
}

// seedClient is a raw SDK client for test seeding only: CreateSecret and
// DeleteSecret are not in Operations(), the rotator never calls them.
func seedClient(t *testing.T, apiOptions ...func(*sm.Options)) *sm.Client {
	return sm.New(sm.Options{
		Region: motoserver.Region, BaseEndpoint: aws.String(moto.Endpoint(t)), Credentials: motoCredentials(),
	}, apiOptions...)
}

func seedHarness(store secretstore.Store, seed *sm.Client) storetest.Harness {
	return storetest.Harness{
		Store: store,
		Create: func(ctx context.Context, name, description string, tags map[string]string, initial *secret.Value) error {
			in := &sm.CreateSecretInput{Name: aws.String(name), Description: aws.String(description)}
			for k, v := range tags {
				in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
			}
			if initial != nil {
				in.SecretString = aws.String(initial.Reveal())
			}
			_, err := seed.CreateSecret(ctx, in)
			return err
		},
		ScheduleDeletion: func(ctx context.Context, name string) error {
			_, err := seed.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(7)})
			return err
		},
	}
}

// unique returns a secret name no other test (or -count run) uses on the shared server.
func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func TestClientSatisfiesAPI(t *testing.T) {
	// The compile-time assertion in store.go is the real check; this keeps
	// the interface's method set equal to Operations().
	var api API = (*sm.Client)(nil)
	_ = api
	if got, want := len(Operations()), 6; got != want {
		t.Fatalf("Operations() has %d entries, API has %d methods: keep them equal", got, want)
	}
}

func TestEndpointAndTLSChecks(t *testing.T) {
	ctx := context.Background()
	for _, ep := range []string{"http://secretsmanager.example.com", "ftp://127.0.0.1:1", "not a url"} {
		if _, err := New(ctx, Config{Region: "us-east-1", Endpoint: ep, Credentials: motoCredentials()}); err == nil {
			t.Errorf("New with endpoint %q succeeded, want an error", ep)
		}
	}
	for _, ep := range []string{"http://127.0.0.1:4566", "http://localhost:4566", "http://[::1]:4566", "https://secretsmanager.example.com"} {
		if _, err := New(ctx, Config{Region: "us-east-1", Endpoint: ep, Credentials: motoCredentials()}); err != nil {
			t.Errorf("New with endpoint %q: %v", ep, err)
		}
	}
}

func TestConformanceAgainstMoto(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, _ := newMotoStore(t)
		h := seedHarness(s, seedClient(t))
		h.MotoDifferences = true
		return h
	})
}

func TestListPagesWithThePaginator(t *testing.T) {
	ctx := context.Background()
	s, counter := newMotoStore(t)
	seed := seedClient(t)
	key := unique("page-count")
	for i := range 103 {
		name := key + "-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		if _, err := seed.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name),
			Tags: []types.Tag{{Key: aws.String(key), Value: aws.String("x")}}}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := s.List(ctx, []secretstore.TagFilter{{Key: key}}, func(secretstore.Secret) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 103 {
		t.Errorf("listed %d secrets, want 103", n)
	}
	if got := counter.Calls("ListSecrets"); got < 2 {
		t.Errorf("ListSecrets called %d times for 103 secrets, want at least 2 pages", got)
	}
}

func TestCallCounterCountsAndStrictModeRefuses(t *testing.T) {
	ctx := context.Background()
	type obs struct{ op, code string }
	var mu sync.Mutex
	var observed []obs
	counter := NewCallCounter(CallCounterOptions{Strict: true, Observe: func(op, code string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		observed = append(observed, obs{op, code})
	}})
	client := seedClient(t, func(o *sm.Options) { o.APIOptions = append(o.APIOptions, counter.APIOption()) })
	name := unique("counter")

	_, err := client.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name)})
	if !errors.Is(err, ErrForbiddenOperation) {
		t.Fatalf("CreateSecret through a strict counter = %v, want ErrForbiddenOperation", err)
	}
	if got := counter.Forbidden(); len(got) != 1 || got[0] != "CreateSecret" {
		t.Errorf("Forbidden() = %v, want [CreateSecret]", got)
	}
	s := NewFromAPI(client)
	_, err = s.Describe(ctx, name)
	if !errors.Is(err, secretstore.ErrNotFound) {
		t.Fatalf("Describe after a refused CreateSecret = %v, want ErrNotFound (the call must not have been sent)", err)
	}
	if err := s.Tag(ctx, name, map[string]string{"a": "b"}); !errors.Is(err, secretstore.ErrNotFound) {
		t.Fatalf("Tag of a missing secret = %v, want ErrNotFound", err)
	}
	want := map[string]int{"forbidden/CreateSecret": 1, "DescribeSecret/ResourceNotFoundException": 1, "TagResource/ResourceNotFoundException": 1}
	got := counter.Snapshot()
	if len(got) != len(want) {
		t.Errorf("Snapshot() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Snapshot()[%q] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if counter.Total() != 2 || counter.Writes() != 1 {
		t.Errorf("Total() = %d, Writes() = %d, want 2 and 1", counter.Total(), counter.Writes())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(observed) != 2 || observed[0] != (obs{"DescribeSecret", "ResourceNotFoundException"}) || observed[1] != (obs{"TagResource", "ResourceNotFoundException"}) {
		t.Errorf("Observe saw %v", observed)
	}
}

func TestErrorsMapToKinds(t *testing.T) {
	ctx := context.Background()
	s, counter := newMotoStore(t)
	missing := unique("missing")
	_, err := s.Describe(ctx, missing)
	var se *secretstore.Error
	if !errors.As(err, &se) || !errors.Is(err, secretstore.ErrNotFound) || se.Op != "Describe" || se.Secret != missing {
		t.Fatalf("Describe of a missing secret = %#v, want *secretstore.Error{Op: Describe, Secret: name, Kind: ErrNotFound}", err)
	}
	if got := counter.Snapshot()["DescribeSecret/ResourceNotFoundException"]; got != 1 {
		t.Errorf("counter = %v, want DescribeSecret/ResourceNotFoundException once", counter.Snapshot())
	}
}
