package config

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
)

// The values below are read once, while the config is parsed and checked,
// and kept typed: whoever runs the config uses them and parses nothing again.

// ClientPrefix is one entry of http.allowed_clients: a CIDR prefix, or a
// single address taken as a /32 (/128).
type ClientPrefix struct{ netip.Prefix }

// MarshalYAML writes the prefix as CIDR.
func (p ClientPrefix) MarshalYAML() (any, error) { return p.String(), nil }

// ParseClientPrefix reads a CIDR prefix (masked: 10.1.2.3/8 is 10.0.0.0/8)
// or a single address.
func ParseClientPrefix(s string) (ClientPrefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return ClientPrefix{p.Masked()}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ClientPrefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	return ClientPrefix{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
}

func (p *ClientPrefix) decodeNode(dec *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		dec.problem(n, path, "expected an IP address or CIDR prefix, got %s", strictyaml.Describe(n))
		return
	}
	v, err := ParseClientPrefix(n.Value)
	if err != nil {
		dec.problem(n, path, "%v", err)
		return
	}
	*p = v
}

// AllowedPrefixes returns http.allowed_clients as prefixes.
func (h HTTPConfig) AllowedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(h.AllowedClients))
	for i, p := range h.AllowedClients {
		out[i] = p.Prefix
	}
	return out
}

// ClientCAs is the pool of http.tls.client_ca_file, loaded when the config
// was checked; nil when no client CA is configured.
func (t TLSConfig) ClientCAs() *x509.CertPool { return t.clientCAs }

// loadClientCAs reads http.tls.client_ca_file into the config's pool, once:
// Validate, which the daemon runs again with the policies it loaded, keeps
// the pool read from the same file (a reload loads a new config).
func (v *validator) loadClientCAs(path string) {
	t := &v.c.HTTP.TLS
	if t.ClientCAFile == "" || !t.Enabled() {
		t.clientCAs, t.caFrom = nil, ""
		return
	}
	if t.clientCAs != nil && t.caFrom == t.ClientCAFile {
		return
	}
	t.clientCAs, t.caFrom = nil, ""
	pem, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		v.ps.add(path, "cannot read the client CA file: %v", err)
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		v.ps.add(path, "%s holds no PEM certificate", t.ClientCAFile)
		return
	}
	t.clientCAs, t.caFrom = pool, t.ClientCAFile
}

// Cron returns sweep.schedule, parsed when the config was checked.
func (s SweepConfig) Cron() cron.Schedule { return s.cron }

// Cron returns policy_scan.schedule, parsed when the config was checked.
func (s PolicyScanConfig) Cron() cron.Schedule { return s.cron }

// cronSpec parses a cron schedule (in UTC), or reports why it cannot.
func (v *validator) cronSpec(path, spec string) cron.Schedule {
	if spec == "" {
		v.ps.add(path, "required: a cron schedule such as \"30 * * * *\" or \"@every 1h\"")
		return nil
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		v.ps.add(path, "not a cron schedule (minute hour day-of-month month day-of-week, or @every 1h): %v", err)
		return nil
	}
	return s
}
