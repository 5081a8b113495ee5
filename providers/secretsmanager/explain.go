package secretsmanager

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// FailureKind names the AWS failures a person can fix without reading the
// SDK's error chain.
type FailureKind string

// The kinds Explain recognises.
const (
	NoCredentials      FailureKind = "no_credentials"
	AssumeRoleDenied   FailureKind = "assume_role_denied"
	BadCredentials     FailureKind = "bad_credentials"
	Unreachable        FailureKind = "unreachable"
	WrongRegion        FailureKind = "wrong_region"
	SecretAccessDenied FailureKind = "secret_access_denied"
)

// Failure is one recognised AWS failure: what happened and what to do, in
// one line. The error chain it came from stays in Err for debug output.
type Failure struct {
	Kind FailureKind
	Line string
	Err  error
}

func (f *Failure) Error() string { return f.Line }
func (f *Failure) Unwrap() error { return f.Err }

// Explain recognises the common ways a call to AWS fails before or at
// Secrets Manager (no credentials at all, a role that cannot be assumed,
// credentials AWS does not know, an endpoint or region that does not
// answer, a secret the role may not read) and says each in one line. It
// returns nil for anything else, which is then best shown as it is.
func Explain(err error) *Failure {
	if err == nil {
		return nil
	}
	var already *Failure
	if errors.As(err, &already) {
		return already
	}
	msg := err.Error()
	fail := func(k FailureKind, format string, args ...any) *Failure {
		return &Failure{Kind: k, Line: fmt.Sprintf(format, args...), Err: err}
	}
	// Missing credentials first: an AssumeRole that failed because there
	// was nothing to sign it with is a missing-credentials problem.
	for _, s := range []string{"no EC2 IMDS role found", "failed to retrieve credentials", "no valid providers in chain",
		"static credentials are empty", "failed to load shared config", "anonymous credentials", "EC2 IMDS", "failed to get shared config profile"} {
		if strings.Contains(msg, s) {
			return fail(NoCredentials, "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "+
				"run where an IAM role is attached (ECS task role, instance profile), or name a profile in environments.<env>.aws.profile")
		}
	}
	var oe *smithy.OperationError
	var api smithy.APIError
	hasAPI := errors.As(err, &api)
	errors.As(err, &oe)
	// The AssumeRole error sits inside the Secrets Manager call that needed
	// its credentials; the SDK keeps only the text of that inner operation.
	if strings.Contains(msg, "operation error STS: AssumeRole") && hasAPI {
		return fail(AssumeRoleDenied, "AWS refused to let these credentials assume the role (%s): check environments.<env>.aws.role_arn, "+
			"that the role's trust policy names the principal the rotator runs as, and that aws.external_id matches the trust policy's sts:ExternalId",
			api.ErrorCode())
	}
	if hasAPI {
		switch api.ErrorCode() {
		case "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException", "ExpiredToken":
			return fail(BadCredentials, "AWS does not accept these credentials (%s): they are expired, revoked or for another account; "+
				"refresh them (aws sso login, a new session) or check AWS_PROFILE", api.ErrorCode())
		case "InvalidSignatureException", "SignatureDoesNotMatch":
			return fail(WrongRegion, "AWS rejected the request signature (%s): check environments.<env>.aws.region matches the endpoint, "+
				"and that the secret access key belongs to the access key id", api.ErrorCode())
		case "AccessDeniedException", "AccessDenied":
			var se *secretstore.Error
			name, op := "", ""
			if errors.As(err, &se) {
				name, op = se.Secret, se.Op
			}
			if oe != nil {
				op = oe.Operation()
			}
			if name == "" {
				return fail(SecretAccessDenied, "AWS denied %s: the rotator's role lacks secretsmanager:%s (see terraform/ for the role's policy)", op, op)
			}
			return fail(SecretAccessDenied, "AWS denied %s on secret %q: grant the rotator's role secretsmanager:%s on it, and kms:Decrypt on its KMS key "+
				"(the resource policy of the secret must allow it too; see terraform/)", op, name, op)
		}
	}
	var dns *net.DNSError
	var nop *net.OpError
	switch {
	case errors.As(err, &dns):
		return fail(Unreachable, "cannot resolve the AWS endpoint host %q: check environments.<env>.aws.region (a real region such as eu-west-1) "+
			"and aws.endpoint, and this machine's DNS", dns.Name)
	case errors.As(err, &nop) && nop.Op == "dial":
		return fail(Unreachable, "cannot connect to the AWS endpoint (%v): check environments.<env>.aws.endpoint and region, "+
			"and that the network allows HTTPS to Secrets Manager (a VPC endpoint, a proxy)", nop.Addr)
	case strings.Contains(msg, "ResolveEndpointV2") || strings.Contains(msg, "failed to resolve service endpoint"):
		return fail(WrongRegion, "no Secrets Manager endpoint for this region: check environments.<env>.aws.region (a region such as eu-west-1)")
	}
	return nil
}
