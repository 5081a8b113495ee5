// Package config loads and validates the daemon's configuration: one YAML
// file, parsed strictly (unknown fields are errors) and validated completely
// (every problem at once, each with file, line, column and field path).
//
// The file never holds a secret value: only where to find one (a SecretRef
// naming an environment variable, a mounted file or a Secrets Manager
// secret). Every field is documented in REFERENCE.md beside this file.
package config

import (
	"crypto/x509"
	"log/slog"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/robfig/cron/v3"
)

// CurrentVersion is the only config format version this build reads.
const CurrentVersion = 1

// Config is the whole configuration file.
type Config struct {
	Version       int                                     `yaml:"version"`
	Environments  map[laki.Environment]*EnvironmentConfig `yaml:"environments"`
	Store         StoreConfig                             `yaml:"store"`
	PoliciesDir   string                                  `yaml:"policies_dir"`
	Secrets       []SecretConfig                          `yaml:"secrets"`
	Discovery     DiscoveryConfig                         `yaml:"discovery"`
	Engine        EngineConfig                            `yaml:"engine"`
	Sweep         SweepConfig                             `yaml:"sweep"`
	PolicyScan    PolicyScanConfig                        `yaml:"policy_scan"`
	AuthWatch     AuthWatchConfig                         `yaml:"auth_watch"`
	Notifications NotificationsConfig                     `yaml:"notifications"`
	HTTP          HTTPConfig                              `yaml:"http"`
	Audit         AuditConfig                             `yaml:"audit"`
	Log           LogConfig                               `yaml:"log"`
	// HA, when set, shares the deployment among replicas through a lease.
	HA *HAConfig `yaml:"ha"`

	// file is the name the config was parsed under; pos maps field paths
	// to where they were written, so later checks can still name a line.
	file string
	pos  *positions
}

// EnvironmentConfig is everything about one LakiConnect environment
// (sandbox or production): the AWS account its secrets live in and the
// LakiConnect API it talks to.
type EnvironmentConfig struct {
	AWS         AWSConfig         `yaml:"aws"`
	LakiConnect LakiConnectConfig `yaml:"lakiconnect"`
	// Vault is where the environment's secrets live with store.kind: vault.
	Vault *VaultConfig `yaml:"vault"`
	// EventBridge, when set, is where rotation events for consumers go.
	EventBridge *EventBridgeConfig `yaml:"eventbridge"`
}

// EventBridgeConfig is the bus that receives rotation events for the
// applications that use the keys, in the environment's account (the aws
// section's region, role and credentials).
type EventBridgeConfig struct {
	Bus string `yaml:"bus"`
	// Endpoint overrides the EventBridge endpoint (VPC endpoint; a loopback test server).
	Endpoint string `yaml:"endpoint"`
	// Attempts per entry before it is counted as failed; 0 means 8.
	Attempts int `yaml:"attempts"`
}

// AWSConfig says how to reach the Secrets Manager that holds one
// environment's secrets. Sandbox and production usually live in separate
// accounts, hence the optional role to assume.
type AWSConfig struct {
	Region      string   `yaml:"region"`
	Endpoint    string   `yaml:"endpoint"`
	Profile     string   `yaml:"profile"`
	RoleARN     string   `yaml:"role_arn"`
	ExternalID  string   `yaml:"external_id"`
	ReadRate    float64  `yaml:"read_rate"`
	WriteRate   float64  `yaml:"write_rate"`
	MaxAttempts int      `yaml:"max_attempts"`
	Timeout     Duration `yaml:"timeout"`
}

// LakiConnectConfig says how to reach one environment's LakiConnect API and
// which master merchants the rotator acts for there.
type LakiConnectConfig struct {
	BaseURL         string                 `yaml:"base_url"`
	RateLimit       float64                `yaml:"rate_limit"`
	Timeout         Duration               `yaml:"timeout"`
	MasterMerchants []MasterMerchantConfig `yaml:"master_merchants"`
}

// MasterMerchantConfig is one master merchant. LakiConnect keys belong to one
// environment and one master merchant, so each master merchant has its own
// management key (the rotator's key for creating and expiring the others).
type MasterMerchantConfig struct {
	ID              string                 `yaml:"id"`
	ManagementKey   ManagementKeyConfig    `yaml:"management_key"`
	SecurityWebhook *SecurityWebhookConfig `yaml:"security_webhook"`
}

// ManagementKeyConfig names the Secrets Manager secret that holds a master
// merchant's management key as a stored credential. With a policy set, the
// rotator rotates that key too (last, so it never locks itself out).
type ManagementKeyConfig struct {
	Secret string   `yaml:"secret"`
	Policy string   `yaml:"policy"`
	Owners []string `yaml:"owners"`
}

// SecurityWebhookConfig is the endpoint at which LakiConnect delivers a
// master merchant's security events, and the Secrets Manager secret holding
// its signing secret. With a policy set, that signing secret is rotated too.
type SecurityWebhookConfig struct {
	EndpointID string   `yaml:"endpoint_id"`
	Secret     string   `yaml:"secret"`
	Path       string   `yaml:"path"`
	Policy     string   `yaml:"policy"`
	Owners     []string `yaml:"owners"`
}

// Store kinds.
const (
	StoreAWS   = "aws"
	StoreLocal = "local"
)

// StoreConfig chooses where managed secrets are kept.
type StoreConfig struct {
	Kind      string `yaml:"kind"`
	LocalPath string `yaml:"local_path"`
}

// SecretConfig declares one managed secret.
type SecretConfig struct {
	Name             string           `yaml:"name"`
	Kind             inventory.Kind   `yaml:"kind"`
	Environment      laki.Environment `yaml:"environment"`
	MasterMerchantID string           `yaml:"master_merchant_id"`
	EndpointID       string           `yaml:"endpoint_id"`
	Policy           string           `yaml:"policy"`
	Owners           []string         `yaml:"owners"`
}

// DiscoveryConfig finds managed secrets by their Secrets Manager tags, so
// thousands of secrets need no entry in this file.
type DiscoveryConfig struct {
	Enabled         bool                `yaml:"enabled"`
	TagFilters      map[string][]string `yaml:"tag_filters"`
	RefreshInterval Duration            `yaml:"refresh_interval"`
}

// EngineConfig tunes the rotation engine.
type EngineConfig struct {
	Workers        int      `yaml:"workers"`
	Attempts       int      `yaml:"attempts"`
	MaxFailures    int      `yaml:"max_failures"`
	BackoffInitial Duration `yaml:"backoff_initial"`
	BackoffMax     Duration `yaml:"backoff_max"`
	// EscalateAfter: an emergency rotation (or a security event's action)
	// still not done this long after it was asked raises a critical alert,
	// again at twice, four times... that.
	EscalateAfter Duration `yaml:"escalate_after"`
}

// SweepConfig schedules the orphan sweep.
type SweepConfig struct {
	Schedule     string   `yaml:"schedule"`
	SafetyMargin Duration `yaml:"safety_margin"`
	cron         cron.Schedule
}

// PolicyScanConfig schedules the check of every key against its policy.
type PolicyScanConfig struct {
	Schedule string `yaml:"schedule"`
	cron     cron.Schedule
}

// AuthWatchConfig sets how often LakiConnect's 401/403 counts are read.
type AuthWatchConfig struct {
	PollInterval Duration `yaml:"poll_interval"`
	// Unattributed are the thresholds for refused requests that no managed
	// secret explains (doors.go).
	Unattributed UnattributedAlerts `yaml:"unattributed"`
}

// NotificationsConfig routes lifecycle events to receivers.
type NotificationsConfig struct {
	Slack          *SlackConfig      `yaml:"slack"`
	People         map[string]string `yaml:"people"`
	Receivers      []ReceiverConfig  `yaml:"receivers"`
	Routes         []RouteConfig     `yaml:"routes"`
	DedupWindow    Duration          `yaml:"dedup_window"`
	DigestInterval Duration          `yaml:"digest_interval"`
}

// SlackConfig is the Slack workspace connection. Token, webhook URL and
// signing secret are references, never values.
type SlackConfig struct {
	APIURL        string    `yaml:"api_url"`
	Token         SecretRef `yaml:"token"`
	WebhookURL    SecretRef `yaml:"webhook_url"`
	SigningSecret SecretRef `yaml:"signing_secret"`
	Channel       string    `yaml:"channel"`
	AllowedUsers  []string  `yaml:"allowed_users"`
}

// Receiver kinds.
const (
	ReceiverSlack    = "slack"
	ReceiverTerminal = "terminal"
	ReceiverLog      = "log"
)

// ReceiverConfig is one named destination for notifications.
type ReceiverConfig struct {
	Name    string `yaml:"name"`
	Kind    string `yaml:"kind"`
	Channel string `yaml:"channel"`
}

// RouteConfig sends the events its Match selects to one receiver.
type RouteConfig struct {
	Match    RouteMatch `yaml:"match"`
	Receiver string     `yaml:"receiver"`
	Mentions []string   `yaml:"mentions"`
	// Digest batches matching events into the receiver's periodic digest.
	Digest bool `yaml:"digest"`
	// Continue false stops at this route once it matched (first-match, made
	// explicit); unset or true, later routes are tried too.
	Continue *bool `yaml:"continue"`
}

// Continues reports whether routes after this one are tried once it matched.
func (r RouteConfig) Continues() bool { return r.Continue == nil || *r.Continue }

// MentionOwners in a route's mentions stands for the owners of the event's
// secret (looked up in notifications.people).
const MentionOwners = "owners"

// RouteMatch selects events: each list that is set must contain the
// event's value; an empty list matches everything.
type RouteMatch struct {
	Environments []laki.Environment `yaml:"environments"`
	Severities   []events.Severity  `yaml:"severities"`
	Steps        []events.Step      `yaml:"steps"`
	Outcomes     []events.Outcome   `yaml:"outcomes"`
	Causes       []events.Cause     `yaml:"causes"`
}

// HTTPConfig is the daemon's own listener: control API, health, metrics and
// the LakiConnect security event receiver.
type HTTPConfig struct {
	Listen         string         `yaml:"listen"`
	TLS            TLSConfig      `yaml:"tls"`
	AllowPlaintext bool           `yaml:"allow_plaintext"`
	Tokens         []TokenConfig  `yaml:"tokens"`
	AllowedClients []ClientPrefix `yaml:"allowed_clients"`
	MaxBodyBytes   int64          `yaml:"max_body_bytes"`
	// ReadinessInterval is how often /readyz's answer is recomputed (doors.go).
	ReadinessInterval Duration      `yaml:"readiness_interval"`
	Metrics           MetricsConfig `yaml:"metrics"`
}

// TLSConfig names the listener's certificate files. ClientCAFile turns on
// client certificate verification (mutual TLS).
type TLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// Clients is the allow-list of client certificates (doors.go).
	Clients   []ClientCertConfig `yaml:"clients"`
	clientCAs *x509.CertPool
	caFrom    string // the ClientCAFile clientCAs was read from
}

// Enabled reports whether the listener serves TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// TokenConfig is one bearer token of the control API: either its SHA-256
// (hex) or a reference to where the token itself is kept.
type TokenConfig struct {
	Name   string    `yaml:"name"`
	SHA256 string    `yaml:"sha256"`
	Token  SecretRef `yaml:"token"`
}

// AuditConfig says where audit records go.
type AuditConfig struct {
	File   string `yaml:"file"`
	Stdout bool   `yaml:"stdout"`
	// Anchor ships the file's records and KMS-signed digests to S3 (auditanchor.go).
	Anchor *AuditAnchorConfig `yaml:"anchor"`
}

// Log formats.
const (
	LogJSON = "json"
	LogText = "text"
	LogAuto = "auto"
)

// LogConfig sets the daemon's log output.
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// SlogLevel is Level as a slog.Level (info when unset).
func (l LogConfig) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}
