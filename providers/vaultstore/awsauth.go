package vaultstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lakirotator/lakirotator/internal/endpoint"
)

// stsBody is the request Vault's AWS IAM login replays to STS to learn who
// signed it.
const stsBody = "Action=GetCallerIdentity&Version=2011-06-15"

// awsLoginData signs an sts:GetCallerIdentity request with the configured
// AWS credentials and wraps it as Vault's aws auth method expects. Vault
// sends it to STS; AWS's answer proves the caller's IAM identity.
func awsLoginData(ctx context.Context, auth Auth, now time.Time) (map[string]any, error) {
	region := auth.AWSRegion
	stsURL := auth.STSEndpoint
	if region == "" {
		region = "us-east-1"
	}
	if stsURL == "" {
		stsURL = "https://sts.amazonaws.com"
		if auth.AWSRegion != "" {
			stsURL = "https://sts." + auth.AWSRegion + ".amazonaws.com"
		}
	}
	if _, err := endpoint.Parse(stsURL); err != nil {
		return nil, fmt.Errorf("sts endpoint %q: %w", stsURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, stsURL, strings.NewReader(stsBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if auth.ServerIDHeader != "" {
		req.Header.Set("X-Vault-AWS-IAM-Server-ID", auth.ServerIDHeader)
	}
	creds, err := auth.AWSCredentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(stsBody))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", region, now); err != nil {
		return nil, err
	}
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString
	return map[string]any{
		"role":                    auth.Role,
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         enc([]byte(stsURL)),
		"iam_request_body":        enc([]byte(stsBody)),
		"iam_request_headers":     enc(headers),
	}, nil
}
