package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// motoEndpoint is one moto_server for the package's tests; each test uses
// its own secret names.
var motoEndpoint string

func TestMain(m *testing.M) {
	s, err := motoserver.Launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer tests:", err)
		os.Exit(1)
	}
	motoEndpoint = s.Endpoint
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// outage fails every Secrets Manager call while it is on, as a network
// partition would, through the SDK's middleware (moto has no such switch).
type outage struct{ on atomic.Bool }

func (o *outage) option(opts *sm.Options) {
	opts.APIOptions = append(opts.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("outage",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if o.on.Load() {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("outage: Secrets Manager unreachable")
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func smClient(optFns ...func(*sm.Options)) *sm.Client {
	return sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(motoEndpoint),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")}, optFns...)
}

func secretName(t *testing.T, suffix string) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "/" + suffix
}

// store writes secrets as the rotator does: create, put AWSPENDING, promote.
type store struct {
	t *testing.T
	c *sm.Client
}

func (s store) create(name string, c secretstore.Credential) {
	s.t.Helper()
	if _, err := s.c.CreateSecret(context.Background(), &sm.CreateSecretInput{Name: aws.String(name),
		SecretString: aws.String(encode(s.t, c)), ClientRequestToken: aws.String(versionID(c))}); err != nil {
		s.t.Fatal(err)
	}
}

func (s store) createRaw(name, value string) {
	s.t.Helper()
	if _, err := s.c.CreateSecret(context.Background(), &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		s.t.Fatal(err)
	}
}

func (s store) putPending(name string, c secretstore.Credential) {
	s.t.Helper()
	if _, err := s.c.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(name),
		SecretString: aws.String(encode(s.t, c)), ClientRequestToken: aws.String(versionID(c)),
		VersionStages: []string{secretstore.StagePending}}); err != nil {
		s.t.Fatal(err)
	}
}

func (s store) promote(name string, c secretstore.Credential) {
	s.t.Helper()
	d, err := s.c.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		s.t.Fatal(err)
	}
	var from string
	for id, st := range d.VersionIdsToStages {
		for _, x := range st {
			if x == secretstore.StageCurrent {
				from = id
			}
		}
	}
	if _, err := s.c.UpdateSecretVersionStage(context.Background(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name),
		VersionStage: aws.String(secretstore.StageCurrent), MoveToVersionId: aws.String(versionID(c)), RemoveFromVersionId: aws.String(from)}); err != nil {
		s.t.Fatal(err)
	}
}

func (s store) tag(name, key, value string) {
	s.t.Helper()
	if _, err := s.c.TagResource(context.Background(), &sm.TagResourceInput{SecretId: aws.String(name),
		Tags: []smtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}}}); err != nil {
		s.t.Fatal(err)
	}
}

func encode(t *testing.T, c secretstore.Credential) string {
	t.Helper()
	v, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return v.Reveal()
}

// versionID derives a stable version id from the credential's own id.
func versionID(c secretstore.Credential) string {
	id := c.KeyID + c.SecretID
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", hash12(id))
}

func hash12(s string) uint64 {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h & 0xffffffffffff
}

const merchant = "mm_0123456789abcdef"

func webhookSecret(id, value string) secretstore.Credential {
	return secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: "sandbox", MasterMerchantID: merchant,
		EndpointID: "we_consumer", SecretID: id, Secret: secret.New(value), CreatedAt: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
}
