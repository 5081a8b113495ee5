package awsaccess

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakirotator/lakirotator/internal/endpoint"
)

// noSharedConfig keeps the machine's AWS settings out of a test.
func noSharedConfig(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

func TestLoadRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	noSharedConfig(t)
	_, err := Load(context.Background(), Config{Region: "eu-west-1", Endpoint: "http://secretsmanager.example.com"})
	if !errors.Is(err, endpoint.ErrPlainHTTP) || !strings.Contains(err.Error(), `endpoint "http://secretsmanager.example.com"`) {
		t.Fatalf("err = %v, want the plain-http refusal naming the endpoint", err)
	}
}

func TestLoadNamesTheRegionField(t *testing.T) {
	noSharedConfig(t)
	_, err := Load(context.Background(), Config{RegionField: "audit.anchor.region"})
	if err == nil || err.Error() != "no AWS region: set audit.anchor.region or AWS_REGION" {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadAssumesTheRole(t *testing.T) {
	noSharedConfig(t)
	static := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secretexample", "")
	plain, err := Load(context.Background(), Config{Region: "eu-west-1", Credentials: static})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := plain.Credentials.Retrieve(context.Background()); got.AccessKeyID != "AKIDEXAMPLE" {
		t.Fatalf("credentials without a role = %q, want the given ones", got.AccessKeyID)
	}
	withRole, err := Load(context.Background(), Config{Region: "eu-west-1", Credentials: static, RoleARN: "arn:aws:iam::123456789012:role/r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := withRole.Credentials.(*aws.CredentialsCache); !ok {
		t.Fatalf("credentials with a role are %T, want the cached assume-role provider", withRole.Credentials)
	}
}

func TestSTSEndpointFollowsALoopbackStandIn(t *testing.T) {
	noSharedConfig(t)
	for service, want := range map[string]string{
		"":                                      "",
		"http://127.0.0.1:4566":                 "http://127.0.0.1:4566",
		"http://localhost:5000":                 "http://localhost:5000",
		"https://vpce-1.secretsmanager.example": "", // a real endpoint: STS stays the SDK's choice
	} {
		if got := stsEndpoint(service); got != want {
			t.Errorf("stsEndpoint(%q) = %q, want %q", service, got, want)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9999")
	if got := stsEndpoint("http://127.0.0.1:4566"); got != "" {
		t.Errorf("with AWS_ENDPOINT_URL_STS set, stsEndpoint = %q, want the SDK's choice", got)
	}
}
