package config

import (
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/internal/testutil/testcerts"
)

func TestAllowedClientsAreParsedOnce(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(minimal+"http:\n  allowed_clients: [10.1.2.3/8, 192.0.2.7, \"::ffff:198.51.100.1\", 2001:db8::/32]\n"))
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8::/32"),
	}, cfg.HTTP.AllowedPrefixes())

	_, err = Parse("f.yaml", []byte(minimal+"http:\n  allowed_clients: [10.0.0.0/8, 42]\n"))
	assert.EqualError(t, err, "f.yaml:11:33: http.allowed_clients[1]: expected an IP address or CIDR prefix, got an integer")
}

func TestSchedulesAreParsedOnce(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(minimal+"policy_scan: {schedule: \"@every 2h\"}\n"))
	require.NoError(t, err)
	from := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	require.NotNil(t, cfg.Sweep.Cron(), "the default sweep schedule is parsed too")
	assert.Equal(t, time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC), cfg.Sweep.Cron().Next(from), "default 30 * * * *")
	assert.Equal(t, from.Add(2*time.Hour), cfg.PolicyScan.Cron().Next(from))
}

func TestClientCAFileIsLoadedWithTheConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write("ca.pem", testCAPEM(t))
	write("empty.pem", "not a certificate\n")
	write("server.pem", "unused: the listener loads it when it starts\n")
	tlsWith := func(ca string) []byte {
		return []byte(minimal + "http:\n  listen: \":8443\"\n  tls: {cert_file: server.pem, key_file: server.pem, client_ca_file: " + ca + "}\n")
	}

	cfg, err := Parse(filepath.Join(dir, "f.yaml"), tlsWith("ca.pem"))
	require.NoError(t, err)
	require.NotNil(t, cfg.HTTP.TLS.ClientCAs())
	assert.False(t, cfg.HTTP.TLS.ClientCAs().Equal(x509.NewCertPool()), "the pool holds the CA")
	// Read once: validating again (as the daemon does with its policies)
	// keeps the pool and reads no file.
	pool := cfg.HTTP.TLS.ClientCAs()
	require.NoError(t, os.Remove(filepath.Join(dir, "ca.pem")))
	require.NoError(t, cfg.Validate())
	assert.Same(t, pool, cfg.HTTP.TLS.ClientCAs())
	// Another file named after parsing is read when validated.
	cfg.HTTP.TLS.ClientCAFile = filepath.Join(dir, "empty.pem")
	assert.EqualError(t, cfg.Validate(), filepath.Join(dir, "f.yaml")+":12:70: http.tls.client_ca_file: "+filepath.Join(dir, "empty.pem")+" holds no PEM certificate")
	assert.Nil(t, cfg.HTTP.TLS.ClientCAs())

	_, err = Parse(filepath.Join(dir, "f.yaml"), tlsWith("empty.pem"))
	assert.EqualError(t, err, filepath.Join(dir, "f.yaml")+":12:70: http.tls.client_ca_file: "+filepath.Join(dir, "empty.pem")+" holds no PEM certificate")

	_, err = Parse(filepath.Join(dir, "f.yaml"), tlsWith("missing.pem"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "f.yaml:12:70: http.tls.client_ca_file: cannot read the client CA file: ")
	assert.Contains(t, err.Error(), "missing.pem")

	cfg, err = Parse("f.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.Nil(t, cfg.HTTP.TLS.ClientCAs(), "no client CA configured")
}

func testCAPEM(t *testing.T) string {
	t.Helper()
	return string(testcerts.NewCA(t, "test client CA").PEM)
}
