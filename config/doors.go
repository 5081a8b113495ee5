package config

import (
	"net"
	"strconv"
	"time"
)

// ClientCertConfig is one entry of the mutual-TLS allow-list: a client
// certificate (signed by http.tls.client_ca_file) whose common name or one
// of whose SANs (DNS name, URI, e-mail) matches is the named principal. The
// name is what the audit trail records, as "cert:<name>".
type ClientCertConfig struct {
	Name       string `yaml:"name"`
	CommonName string `yaml:"common_name"`
	SAN        string `yaml:"san"`
}

// MetricsConfig says where and to whom /metrics is served.
type MetricsConfig struct {
	// Listen, when set, serves /metrics on its own listener (a loopback or
	// VPC-only address) and not on the API's.
	Listen string `yaml:"listen"`
	// RequireAuth asks for a token or client certificate, as the API does.
	RequireAuth bool `yaml:"require_auth"`
	// PerSecretLabels adds per-secret series (age, last success); off by
	// default, since they name every managed secret.
	PerSecretLabels bool `yaml:"per_secret_labels"`
	// MaxSecretLabels bounds those series (default 200).
	MaxSecretLabels int `yaml:"max_secret_labels"`
}

// UnattributedAlerts are the 401/403 watch's thresholds for refused
// requests that no managed secret explains: keys LakiConnect does not know
// (counted together per environment and merchant, whatever their prefix)
// and keys it knows that no managed secret holds (counted per key). Zero
// means the default.
type UnattributedAlerts struct {
	Unauthorized401 int      `yaml:"unauthorized_401"`
	Forbidden403    int      `yaml:"forbidden_403"`
	Window          Duration `yaml:"window"`
}

// Defaults of the doors' settings.
const (
	DefaultReadinessInterval     = 15 * time.Second
	DefaultMaxSecretLabels       = 200
	DefaultUnattributedThreshold = 20
	DefaultUnattributedWindow    = 15 * time.Minute
)

// Thresholds returns the thresholds with defaults filled in.
func (u UnattributedAlerts) Thresholds() (unauthorized401, forbidden403 int, window time.Duration) {
	unauthorized401, forbidden403, window = u.Unauthorized401, u.Forbidden403, u.Window.Std()
	if unauthorized401 <= 0 {
		unauthorized401 = DefaultUnattributedThreshold
	}
	if forbidden403 <= 0 {
		forbidden403 = DefaultUnattributedThreshold
	}
	if window <= 0 {
		window = DefaultUnattributedWindow
	}
	return unauthorized401, forbidden403, window
}

// ReadinessEvery is how often readiness is computed in the background.
func (h HTTPConfig) ReadinessEvery() time.Duration {
	if h.ReadinessInterval > 0 {
		return h.ReadinessInterval.Std()
	}
	return DefaultReadinessInterval
}

// SecretLabelLimit is the bound on per-secret metric series.
func (m MetricsConfig) SecretLabelLimit() int {
	if m.MaxSecretLabels > 0 {
		return m.MaxSecretLabels
	}
	return DefaultMaxSecretLabels
}

// doors validates the settings of the daemon's inbound side.
func (v *validator) doors() {
	h := v.c.HTTP
	const hp = "http"
	if len(h.TLS.Clients) > 0 && h.TLS.ClientCAFile == "" {
		v.ps.add(hp+".tls.clients", "needs client_ca_file: the certificates are verified against it")
	}
	seen := map[string]int{}
	for i, c := range h.TLS.Clients {
		p := indexPath(hp+".tls.clients", i)
		switch first, dup := seen[c.Name]; {
		case c.Name == "":
			v.ps.add(p+".name", "required: who holds the certificate (shown in the audit trail)")
		case !simpleNameRE.MatchString(c.Name):
			v.ps.add(p+".name", "%q is not a name (letters, digits, . _ @ -)", c.Name)
		case dup:
			v.ps.add(p+".name", "client %q is already defined at clients[%d]", c.Name, first)
		default:
			seen[c.Name] = i
		}
		if c.CommonName == "" && c.SAN == "" {
			v.ps.add(p, "needs common_name or san: which certificates are this client")
		}
	}
	if h.ReadinessInterval != 0 {
		v.durationAtLeast(hp+".readiness_interval", h.ReadinessInterval, Duration(time.Second))
	}
	m := h.Metrics
	if m.Listen != "" {
		if _, port, err := net.SplitHostPort(m.Listen); err != nil {
			v.ps.add(hp+".metrics.listen", "%q is not host:port, as in 127.0.0.1:9464", m.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.ps.add(hp+".metrics.listen", "%q is not host:port, as in 127.0.0.1:9464", m.Listen)
		} else if m.Listen == h.Listen {
			v.ps.add(hp+".metrics.listen", "is the API's own address; leave it out to serve /metrics there")
		}
	}
	u := v.c.AuthWatch.Unattributed
	if u.Unauthorized401 < 0 || u.Forbidden403 < 0 {
		v.ps.add("auth_watch.unattributed", "thresholds must not be negative")
	}
	if u.Window != 0 {
		v.durationAtLeast("auth_watch.unattributed.window", u.Window, Duration(time.Minute))
	}
	if m.MaxSecretLabels < 0 {
		v.ps.add(hp+".metrics.max_secret_labels", "must not be negative")
	}
}
