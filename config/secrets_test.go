package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// Secret-shaped values a careless operator might paste into the config.
const (
	pastedSlackToken = "xoxb-1234567890-abcdefghijklmnopQRSTUV"
	pastedHook       = "https://hooks.slack.example/services/T000/B000/XyZsecretPart123"
	pastedAPIToken   = "s3cr3t-bearer-token-pasted-in-config"
	pastedLiveKey    = "lk_live_0123456789abcdefghijABCDEFGHIJ0123456789"
)

func TestPastedSecretsAreRefusedAndNotEchoed(t *testing.T) {
	data := minimal + `notifications:
  slack:
    token: ` + pastedSlackToken + `
    webhook_url: "` + pastedHook + `"
    signing_secret: [` + pastedLiveKey + `]
http:
  tokens:
    - {name: ci, token: ` + pastedAPIToken + `}
    - {name: ops, sha256: ` + pastedAPIToken + `}
    - {name: old, sha256: ` + pastedLiveKey + `}
    - {name: new, token: {env: "` + pastedSlackToken + `"}}
`
	_, err := Parse("f.yaml", []byte(data))
	require.Error(t, err)
	msg := err.Error()
	for _, s := range []string{pastedSlackToken, pastedHook, "XyZsecretPart123", pastedAPIToken, pastedLiveKey} {
		assert.NotContains(t, msg, s)
	}
	assert.Equal(t, "f.yaml:12:12: notifications.slack.token: secret values are never written in the config; write {env: NAME} or {aws_secret: NAME} (or {file: PATH}) instead\n"+
		"f.yaml:13:18: notifications.slack.webhook_url: secret values are never written in the config; write {env: NAME} or {aws_secret: NAME} (or {file: PATH}) instead\n"+
		"f.yaml:14:21: notifications.slack.signing_secret: expected a mapping, got a list\n"+
		"f.yaml:17:25: http.tokens[0].token: secret values are never written in the config; write {env: NAME} or {aws_secret: NAME} (or {file: PATH}) instead\n"+
		"f.yaml:18:27: http.tokens[1].sha256: not 64 hex digits; write the token's SHA-256 (sha256sum), or use token: {env: NAME}\n"+
		"f.yaml:19:27: http.tokens[2].sha256: not 64 hex digits; write the token's SHA-256 (sha256sum), or use token: {env: NAME}\n"+
		"f.yaml:20:26: http.tokens[3].token: env must be the name of an environment variable (letters, digits, _), not a value", msg)
}

func TestCheckURLDoesNotEchoTheURL(t *testing.T) {
	for _, raw := range []string{"http://hooks.example/T/B/" + pastedAPIToken, "ftp://x/" + pastedAPIToken, "https://u:" + pastedAPIToken + "@h/", "/" + pastedAPIToken, "%zz" + pastedAPIToken} {
		err := CheckURL(raw)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), pastedAPIToken)
	}
	for _, ok := range []string{"https://api.lakiconnect.example/v1", "http://127.0.0.1:8080", "http://localhost/x", "http://[::1]:5000"} {
		assert.NoError(t, CheckURL(ok), ok)
	}
}

func TestLocalResolver(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte(pastedAPIToken+"\n"), 0o600))
	env := map[string]string{"SLACK_TOKEN": pastedSlackToken, "EMPTY": ""}
	var awsAsked []SecretRef
	r := LocalResolver{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		AWS: ResolverFunc(func(_ context.Context, ref SecretRef) (secret.Value, error) {
			awsAsked = append(awsAsked, ref)
			if ref.AWSSecret == "missing" {
				return secret.Value{}, errors.New("secret not found")
			}
			return secret.New(pastedLiveKey), nil
		}),
	}

	// References read from a file carry their place in it into errors.
	cfg, err := Parse("conf.yaml", []byte(minimal+`notifications:
  slack:
    token: {env: SLACK_TOKEN}
    webhook_url: {env: NOT_SET}
    signing_secret: {file: token}
`))
	require.NoError(t, err)
	s := cfg.Notifications.Slack

	v, err := r.Resolve(ctx, s.Token)
	require.NoError(t, err)
	assert.Equal(t, pastedSlackToken, v.Reveal())

	_, err = r.Resolve(ctx, s.WebhookURL)
	assert.EqualError(t, err, "conf.yaml:13: notifications.slack.webhook_url: environment variable NOT_SET is not set or empty: secret reference not resolved")
	assert.ErrorIs(t, err, ErrUnresolved)

	// The file path was taken relative to the config file, so point it at the temp file.
	s.SigningSecret.File = file
	v, err = r.Resolve(ctx, s.SigningSecret)
	require.NoError(t, err)
	assert.Equal(t, pastedAPIToken, v.Reveal(), "one trailing newline dropped")

	_, err = r.Resolve(ctx, SecretRef{Env: "EMPTY"})
	assert.EqualError(t, err, "environment variable EMPTY is not set or empty: secret reference not resolved")

	_, err = r.Resolve(ctx, SecretRef{File: filepath.Join(dir, "nope")})
	require.ErrorIs(t, err, ErrUnresolved)
	assert.Contains(t, err.Error(), "nope")

	v, err = r.Resolve(ctx, SecretRef{AWSSecret: "slack/token", Environment: "production"})
	require.NoError(t, err)
	assert.Equal(t, pastedLiveKey, v.Reveal())
	require.Len(t, awsAsked, 1)
	assert.Equal(t, "slack/token", awsAsked[0].AWSSecret)

	_, err = r.Resolve(ctx, SecretRef{AWSSecret: "missing", Environment: "production"})
	assert.EqualError(t, err, "aws_secret missing (production): secret not found")

	_, err = LocalResolver{}.Resolve(ctx, SecretRef{AWSSecret: "x", Environment: "sandbox"})
	assert.ErrorIs(t, err, ErrUnresolved)
	_, err = r.Resolve(ctx, SecretRef{Env: "A", File: "b"})
	assert.ErrorIs(t, err, ErrUnresolved)

	// Nothing the resolver returns prints the value.
	assert.Equal(t, secret.Redacted, v.String())
}

func TestTokenSet(t *testing.T) {
	ctx := context.Background()
	tokens := []TokenConfig{
		{Name: "ci", SHA256: HashToken("ci-token-value")},
		{Name: "oncall", Token: SecretRef{Env: "ONCALL"}},
	}
	r := LocalResolver{LookupEnv: func(k string) (string, bool) {
		if k == "ONCALL" {
			return pastedAPIToken, true
		}
		return "", false
	}}
	ts, err := NewTokenSet(ctx, tokens, r)
	require.NoError(t, err)
	assert.Equal(t, 2, ts.Len())

	name, ok := ts.Match("ci-token-value")
	assert.True(t, ok)
	assert.Equal(t, "ci", name)
	name, ok = ts.Match(pastedAPIToken)
	assert.True(t, ok)
	assert.Equal(t, "oncall", name)
	for _, wrong := range []string{"", "ci-token-valu", "ci-token-value ", HashToken("ci-token-value")} {
		_, ok := ts.Match(wrong)
		assert.False(t, ok, "%q must not match", wrong)
	}
	var nilSet *TokenSet
	_, ok = nilSet.Match("x")
	assert.False(t, ok)

	// Only hashes are kept: the plain token is nowhere in the set.
	assert.NotContains(t, strings.ToLower(fmtAll(ts)), strings.ToLower(pastedAPIToken))

	_, err = NewTokenSet(ctx, []TokenConfig{{Name: "gone", Token: SecretRef{Env: "NOPE"}}}, r)
	assert.EqualError(t, err, "http.tokens[0] (gone): environment variable NOPE is not set or empty: secret reference not resolved")
	_, err = NewTokenSet(ctx, []TokenConfig{{Name: "bad", SHA256: pastedAPIToken}}, r)
	assert.EqualError(t, err, "http.tokens[0] (bad): sha256 is not 64 hex digits")
}

func fmtAll(ts *TokenSet) string {
	var b strings.Builder
	for i := range ts.names {
		b.WriteString(ts.names[i])
		b.Write(ts.hashes[i][:])
	}
	return b.String()
}

func TestParseDuration(t *testing.T) {
	ok := map[string]string{"90s": "1m30s", "15m": "15m", "2h": "2h", "7d": "7d", "1d12h": "1d12h", "36h": "1d12h", "0s": "0s", "1.5s": "1s500ms", "0d": "0s"}
	for in, want := range ok {
		d, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, d.String(), in)
		back, err := ParseDuration(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, back, "String reads back")
	}
	bad := map[string]string{
		"":             "empty duration",
		"5":            `"5" is not a duration: use a number and a unit (s, m, h, d), as in 90s, 15m, 2h or 7d`,
		"-5m":          `"-5m" has a sign: durations are written unsigned, as in 90s or 7d`,
		"d":            `"d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"1.5d":         `"1.5d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"1d-1h":        `"1d-1h" has a sign: durations are written unsigned, as in 90s or 7d`,
		"+1d":          `"+1d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"99999999999d": `"99999999999d" is too long`,
	}
	for in, want := range bad {
		_, err := ParseDuration(in)
		assert.EqualError(t, err, want, in)
	}
}
