package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExampleAuditAnchor(t *testing.T) {
	cfg, err := Load("example.yaml", WithKnownPolicies(func(name string) bool { return slices.Contains(examplePolicies, name) }))
	require.NoError(t, err)
	a := cfg.Audit.Anchor
	require.NotNil(t, a)
	assert.Equal(t, "acme-lakirotator-audit-production", a.Bucket)
	assert.Equal(t, "alias/lakirotator-production-audit", a.KMSKeyID)
	assert.Equal(t, 5*time.Minute, a.Interval.Std())
}

func TestAuditAnchorProblemsNameTheField(t *testing.T) {
	base, err := os.ReadFile("example.yaml")
	require.NoError(t, err)
	known := WithKnownPolicies(func(name string) bool { return slices.Contains(examplePolicies, name) })
	anchor := "  anchor:\n    bucket: acme-lakirotator-audit-production\n    prefix: production/\n    kms_key_id: alias/lakirotator-production-audit\n    interval: 5m\n"
	require.Contains(t, string(base), anchor)
	block := func(bucket, key, interval, extra string) string {
		return "  anchor:\n    bucket: " + bucket + "\n    prefix: production/\n    kms_key_id: " + key + "\n    interval: " + interval + "\n" + extra
	}
	for _, tc := range []struct{ name, block, want string }{
		{"bucket", block("Not_A_Bucket", "alias/a", "5m", ""), "audit.anchor.bucket"},
		{"key", block("acme-audit", "my key", "5m", ""), "audit.anchor.kms_key_id"},
		{"interval", block("acme-audit", "alias/a", "10s", ""), "audit.anchor.interval: must be at least 1m"},
		{"endpoint", block("acme-audit", "alias/a", "5m", "    endpoint: http://s3.example.com\n"), "audit.anchor.endpoint: http:// is allowed only to loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("example.yaml", []byte(strings.Replace(string(base), anchor, tc.block, 1)), known)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The anchor vouches for the file: no file, no anchor.
	data := strings.Replace(string(base), "  file: /var/log/lakirotator/audit.jsonl\n", "  stdout: true\n", 1)
	_, err = Parse("example.yaml", []byte(data), known)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "audit.anchor: needs audit.file")
}
