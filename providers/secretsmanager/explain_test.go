package secretsmanager

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func getThrough(t *testing.T, cfg Config, name string) error {
	t.Helper()
	cfg.MaxAttempts = 1
	st, err := New(context.Background(), cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = st.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err == nil {
		t.Fatalf("reading %s succeeded; the test wants a failure", name)
	}
	return err
}

func assertExplained(t *testing.T, err error, kind FailureKind, wants ...string) {
	t.Helper()
	f := Explain(err)
	if f == nil {
		t.Fatalf("not recognised: %v", err)
	}
	if f.Kind != kind {
		t.Errorf("kind %s, want %s; line %q; chain %v", f.Kind, kind, f.Line, err)
	}
	if strings.Contains(f.Line, "\n") {
		t.Errorf("explanation spans lines: %q", f.Line)
	}
	for _, w := range wants {
		if !strings.Contains(f.Line, w) {
			t.Errorf("explanation %q does not say %q", f.Line, w)
		}
	}
}

func TestExplainNoCredentials(t *testing.T) {
	motoserver.EmptyAWSEnv(t)
	endpoint := moto.Endpoint(t)
	err := getThrough(t, Config{Region: "us-east-1", Endpoint: endpoint}, "anything")
	assertExplained(t, err, NoCredentials, "no AWS credentials", "AWS_PROFILE")

	// With a role to assume and nothing to sign AssumeRole with, it is still
	// the missing credentials that need fixing.
	err = getThrough(t, Config{Region: "us-east-1", Endpoint: endpoint, RoleARN: "arn:aws:iam::123456789012:role/x"}, "anything")
	assertExplained(t, err, NoCredentials, "no AWS credentials")
}

// stsDenies answers every AssumeRole as STS does for a principal the role's
// trust policy does not name.
func stsDenies(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>` +
			`<Message>User: arn:aws:iam::123456789012:user/dev is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/lakirotator</Message>` +
			`</Error><RequestId>1</RequestId></ErrorResponse>`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestExplainAssumeRoleDenied(t *testing.T) {
	motoserver.EmptyAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	t.Setenv("AWS_ENDPOINT_URL_STS", stsDenies(t))
	err := getThrough(t, Config{Region: "us-east-1", Endpoint: moto.Endpoint(t), RoleARN: "arn:aws:iam::222222222222:role/lakirotator"}, "anything")
	assertExplained(t, err, AssumeRoleDenied, "role_arn", "trust policy", "external_id")
}

func TestExplainUnreachableEndpoint(t *testing.T) {
	motoserver.EmptyAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	err = getThrough(t, Config{Region: "us-east-1", Endpoint: closed}, "anything")
	assertExplained(t, err, Unreachable, "cannot connect", "endpoint")
}

func TestExplainAccessDeniedOnASecret(t *testing.T) {
	motoserver.EmptyAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	// moto does not enforce IAM; this endpoint answers as Secrets Manager
	// does when the role's policy lacks the action.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/lakirotator/x is not authorized to perform: secretsmanager:GetSecretValue on resource: payments/checkout"}`))
	}))
	defer srv.Close()
	err := getThrough(t, Config{Region: "us-east-1", Endpoint: srv.URL}, "payments/checkout")
	assertExplained(t, err, SecretAccessDenied, `"payments/checkout"`, "secretsmanager:GetSecretValue", "kms:Decrypt")
}

func TestExplainLeavesOtherErrorsAlone(t *testing.T) {
	motoserver.EmptyAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	err := getThrough(t, Config{Region: "us-east-1", Endpoint: moto.Endpoint(t)}, "explain/does-not-exist")
	if f := Explain(err); f != nil {
		t.Errorf("a missing secret was explained as %s: %q", f.Kind, f.Line)
	}
}

func TestExplainUnresolvableEndpoint(t *testing.T) {
	motoserver.EmptyAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	// A mistyped region in an endpoint: .invalid never resolves (RFC 2606).
	err := getThrough(t, Config{Region: "eu-wst-1", Endpoint: "https://secretsmanager.eu-wst-1.invalid"}, "anything")
	assertExplained(t, err, Unreachable, "cannot resolve", "secretsmanager.eu-wst-1.invalid", "region")
}
