package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/endpoint"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Defaults, applied to fields the file leaves out (REFERENCE.md lists them).
const (
	DefaultPoliciesDir        = "policies"
	DefaultAWSReadRate        = 10000 // GetSecretValue/DescribeSecret per second: Secrets Manager's quota
	DefaultAWSWriteRate       = 50    // PutSecretValue/UpdateSecretVersionStage/TagResource per second
	DefaultAWSMaxAttempts     = 5
	DefaultAWSTimeout         = Duration(30 * time.Second)
	DefaultLakiRateLimit      = 80 // per management key; LakiConnect allows 100
	DefaultLakiTimeout        = Duration(30 * time.Second)
	DefaultDiscoveryRefresh   = Duration(10 * time.Minute)
	DefaultWorkers            = 8
	DefaultAttempts           = 3
	DefaultMaxFailures        = 5
	DefaultBackoffInitial     = Duration(2 * time.Second)
	DefaultBackoffMax         = Duration(5 * time.Minute)
	DefaultEscalateAfter      = Duration(5 * time.Minute)
	DefaultSweepSchedule      = "30 * * * *"
	DefaultSweepSafetyMargin  = Duration(time.Hour)
	DefaultPolicyScanSchedule = "0 * * * *"
	DefaultAuthWatchPoll      = Duration(5 * time.Minute)
	DefaultSlackAPIURL        = "https://slack.com/api/"
	DefaultDedupWindow        = Duration(10 * time.Minute)
	DefaultDigestInterval     = Duration(time.Hour)
	DefaultListen             = "127.0.0.1:8080"
	DefaultMaxBodyBytes       = 1 << 20
	DefaultLogFormat          = LogAuto
	DefaultLogLevel           = "info"
)

// MaxLakiRateLimit is LakiConnect's limit per calling key.
const MaxLakiRateLimit = 100

// MinSweepSafetyMargin outlasts how long a live rotation can hold a key it
// created before storing it: the create and the put with their retries
// (about a minute each) and the engine's backoff between attempts (5m at
// most by default, 3 attempts). A key whose rotation was killed is adopted
// by its restart, and a replayed create that hands back a key swept since
// fails its test and moves the rotation to its next version, so the margin
// need not outlast LakiConnect's 24h idempotency window.
const MinSweepSafetyMargin = Duration(30 * time.Minute)

// SecurityWebhookPath is the default path at which the daemon receives a
// master merchant's security events.
func SecurityWebhookPath(env laki.Environment, masterMerchantID string) string {
	return "/v1/lakiconnect/events/" + string(env) + "/" + masterMerchantID
}

func (c *Config) applyDefaults() {
	unset := func(path string) bool { return !c.pos.set(path) }
	defStr := func(path string, p *string, v string) {
		if unset(path) {
			*p = v
		}
	}
	defInt := func(path string, p *int, v int) {
		if unset(path) {
			*p = v
		}
	}
	defFloat := func(path string, p *float64, v float64) {
		if unset(path) {
			*p = v
		}
	}
	defDur := func(path string, p *Duration, v Duration) {
		if unset(path) {
			*p = v
		}
	}
	defStr("policies_dir", &c.PoliciesDir, DefaultPoliciesDir)
	defStr("store.kind", &c.Store.Kind, StoreAWS)
	if c.HA != nil {
		defDur("ha.ttl", &c.HA.TTL, DefaultHATTL)
	}
	for name, e := range c.Environments {
		if e == nil {
			continue
		}
		p := childPath("environments", string(name))
		defFloat(p+".aws.read_rate", &e.AWS.ReadRate, DefaultAWSReadRate)
		defFloat(p+".aws.write_rate", &e.AWS.WriteRate, DefaultAWSWriteRate)
		defInt(p+".aws.max_attempts", &e.AWS.MaxAttempts, DefaultAWSMaxAttempts)
		defDur(p+".aws.timeout", &e.AWS.Timeout, DefaultAWSTimeout)
		defFloat(p+".lakiconnect.rate_limit", &e.LakiConnect.RateLimit, DefaultLakiRateLimit)
		defDur(p+".lakiconnect.timeout", &e.LakiConnect.Timeout, DefaultLakiTimeout)
		for i := range e.LakiConnect.MasterMerchants {
			m := &e.LakiConnect.MasterMerchants[i]
			if w := m.SecurityWebhook; w != nil {
				defStr(indexPath(p+".lakiconnect.master_merchants", i)+".security_webhook.path", &w.Path, SecurityWebhookPath(name, m.ID))
			}
		}
	}
	defDur("discovery.refresh_interval", &c.Discovery.RefreshInterval, DefaultDiscoveryRefresh)
	defInt("engine.workers", &c.Engine.Workers, DefaultWorkers)
	defInt("engine.attempts", &c.Engine.Attempts, DefaultAttempts)
	defInt("engine.max_failures", &c.Engine.MaxFailures, DefaultMaxFailures)
	defDur("engine.backoff_initial", &c.Engine.BackoffInitial, DefaultBackoffInitial)
	defDur("engine.backoff_max", &c.Engine.BackoffMax, DefaultBackoffMax)
	defDur("engine.escalate_after", &c.Engine.EscalateAfter, DefaultEscalateAfter)
	defStr("sweep.schedule", &c.Sweep.Schedule, DefaultSweepSchedule)
	defDur("sweep.safety_margin", &c.Sweep.SafetyMargin, DefaultSweepSafetyMargin)
	defStr("policy_scan.schedule", &c.PolicyScan.Schedule, DefaultPolicyScanSchedule)
	defDur("auth_watch.poll_interval", &c.AuthWatch.PollInterval, DefaultAuthWatchPoll)
	if c.Notifications.Slack != nil {
		defStr("notifications.slack.api_url", &c.Notifications.Slack.APIURL, DefaultSlackAPIURL)
	}
	defDur("notifications.dedup_window", &c.Notifications.DedupWindow, DefaultDedupWindow)
	defDur("notifications.digest_interval", &c.Notifications.DigestInterval, DefaultDigestInterval)
	defStr("http.listen", &c.HTTP.Listen, DefaultListen)
	if unset("http.max_body_bytes") {
		c.HTTP.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if unset("audit.stdout") && c.Audit.File == "" {
		c.Audit.Stdout = true
	}
	if a := c.Audit.Anchor; a != nil {
		defDur("audit.anchor.interval", &a.Interval, DefaultAuditAnchorInterval)
	}
	defStr("log.format", &c.Log.Format, DefaultLogFormat)
	defStr("log.level", &c.Log.Level, DefaultLogLevel)
}

var (
	secretNameRE   = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	regionRE       = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	roleARNRE      = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	slackUserRE    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackMentionRE = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	slackChannelRE = regexp.MustCompile(`^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{2,})$`)
	simpleNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)
	hex64RE        = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

func checkSecretName(name string) string {
	if !secretNameRE.MatchString(name) {
		return fmt.Sprintf("%q is not a Secrets Manager secret name (1-512 of A-Z a-z 0-9 / _ + = . @ -)", name)
	}
	return ""
}

func envList(envs map[laki.Environment]*EnvironmentConfig) string {
	var names []string
	for n := range envs {
		if n.Valid() {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none configured"
	}
	return strings.Join(names, ", ")
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

// validator carries what the checks share.
type validator struct {
	c     *Config
	ps    *problems
	known func(string) bool
	check func(string, inventory.Kind, laki.Environment) error
	names map[string]string // managed secret name -> path that declared it
}

func (c *Config) validate(ps *problems, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	v := &validator{c: c, ps: ps, known: o.knownPolicies, check: o.policyCheck, names: map[string]string{}}
	if c.Version != CurrentVersion {
		if c.pos.set("version") || c.Version != 0 {
			ps.add("version", "unsupported version %d; this build reads version: %d", c.Version, CurrentVersion)
		} else {
			ps.add("version", "required: write version: %d at the top", CurrentVersion)
		}
	}
	v.environments()
	v.store()
	v.ha()
	if c.PoliciesDir == "" {
		ps.add("policies_dir", "required: the directory of policy files")
	}
	v.secrets()
	v.discovery()
	v.engine()
	v.notifications()
	v.http()
	if c.Audit.File == "" && !c.Audit.Stdout {
		ps.add("audit", "audit records would go nowhere: set file or stdout: true")
	}
	v.auditAnchor()
	if !oneOf(c.Log.Format, LogJSON, LogText, LogAuto) {
		ps.add("log.format", "%q is not one of json, text, auto", c.Log.Format)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		ps.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
}

func (v *validator) durationAtLeast(path string, d, least Duration) {
	if d < least {
		v.ps.add(path, "must be at least %s", least)
	}
}

func (v *validator) url(path, raw string, required bool) {
	if raw == "" {
		if required {
			v.ps.add(path, "required")
		}
		return
	}
	if err := CheckURL(raw); err != nil {
		v.ps.add(path, "%v", err)
	}
}

// refSet reports whether a reference was written, even one that failed to decode.
func (v *validator) refSet(path string, r SecretRef) bool {
	return !r.IsZero() || v.c.pos.set(path)
}

func (v *validator) ref(path string, r SecretRef) {
	for _, msg := range r.check(v.c.Environments) {
		v.ps.add(path, "%s", msg)
	}
}

func (v *validator) policy(path, name string, kind inventory.Kind, env laki.Environment) {
	if name == "" {
		v.ps.add(path, "required: the name of a policy in policies_dir")
		return
	}
	if v.known != nil && !v.known(name) {
		v.ps.add(path, "no policy named %q in %s", name, v.c.PoliciesDir)
		return
	}
	if v.check != nil && kind.Valid() && env.Valid() {
		if err := v.check(name, kind, env); err != nil {
			v.ps.add(path, "policy %q: %v", name, err)
		}
	}
}

func (v *validator) owners(path string, owners []string) {
	for i, o := range owners {
		if !simpleNameRE.MatchString(o) {
			v.ps.add(indexPath(path, i), "%q is not a person or team name (letters, digits, . _ @ -; no spaces or commas)", o)
		}
	}
}

// secretName checks a managed secret's name and that no other entry uses it.
func (v *validator) secretName(path, name string) {
	if name == "" {
		v.ps.add(path, "required")
		return
	}
	if msg := checkSecretName(name); msg != "" {
		v.ps.add(path, "%s", msg)
		return
	}
	if first, dup := v.names[name]; dup {
		v.ps.add(path, "secret %q is already declared at %s", name, first)
		return
	}
	v.names[name] = path
}

func (v *validator) engine() {
	c := v.c
	if c.Engine.Workers < 1 || c.Engine.Workers > 1024 {
		v.ps.add("engine.workers", "must be between 1 and 1024")
	}
	if c.Engine.Attempts < 1 || c.Engine.Attempts > 20 {
		v.ps.add("engine.attempts", "must be between 1 and 20")
	}
	if c.Engine.MaxFailures < 1 {
		v.ps.add("engine.max_failures", "must be at least 1")
	}
	v.durationAtLeast("engine.backoff_initial", c.Engine.BackoffInitial, Duration(time.Second))
	if c.Engine.BackoffMax < c.Engine.BackoffInitial {
		v.ps.add("engine.backoff_max", "must be at least backoff_initial (%s)", c.Engine.BackoffInitial)
	}
	v.durationAtLeast("engine.escalate_after", c.Engine.EscalateAfter, Duration(time.Second))
	c.Sweep.cron = v.cronSpec("sweep.schedule", c.Sweep.Schedule)
	if c.Sweep.SafetyMargin < MinSweepSafetyMargin {
		v.ps.add("sweep.safety_margin", "must be at least %s: longer than a live rotation can hold a key it made before storing it", MinSweepSafetyMargin)
	}
	c.PolicyScan.cron = v.cronSpec("policy_scan.schedule", c.PolicyScan.Schedule)
	v.durationAtLeast("auth_watch.poll_interval", c.AuthWatch.PollInterval, Duration(10*time.Second))
}

var (
	allSteps = []events.Step{events.StepTrigger, events.StepCreate, events.StepTest, events.StepPromote,
		events.StepRetire, events.StepRotation, events.StepSweep, events.StepViolation, events.StepAlert, events.StepAuth}
	allOutcomes = []events.Outcome{events.OutcomeStarted, events.OutcomeSucceeded, events.OutcomeFailed,
		events.OutcomeWarning, events.OutcomeRefused, events.OutcomeSkipped}
	allSeverities = []events.Severity{events.SeverityInfo, events.SeverityWarning, events.SeverityCritical}
	allCauses     = []events.Cause{events.CauseScheduled, events.CauseCompromise, events.CausePersonnel, events.CauseManual}
)

func (v *validator) http() {
	h := v.c.HTTP
	const hp = "http"
	host, port, err := net.SplitHostPort(h.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		v.ps.add(hp+".listen", "%q is not host:port, as in 127.0.0.1:8080 or :8443", h.Listen)
	} else if !h.TLS.Enabled() && !h.AllowPlaintext && !endpoint.IsLoopbackHost(host) {
		v.ps.add(hp+".listen", "listening beyond loopback needs tls (cert_file and key_file), or allow_plaintext: true behind a TLS-terminating proxy")
	}
	if (h.TLS.CertFile == "") != (h.TLS.KeyFile == "") {
		v.ps.add(hp+".tls", "set both cert_file and key_file, or neither")
	}
	if h.TLS.ClientCAFile != "" && !h.TLS.Enabled() {
		v.ps.add(hp+".tls.client_ca_file", "needs cert_file and key_file")
	}
	v.loadClientCAs(hp + ".tls.client_ca_file")
	if h.AllowPlaintext && h.TLS.Enabled() {
		v.ps.add(hp+".allow_plaintext", "contradicts tls: remove one")
	}
	names := map[string]int{}
	hashes := map[string]int{}
	for i, t := range h.Tokens {
		p := indexPath(hp+".tokens", i)
		switch first, dup := names[t.Name]; {
		case t.Name == "":
			v.ps.add(p+".name", "required: who holds the token (shown in the audit trail)")
		case !simpleNameRE.MatchString(t.Name):
			v.ps.add(p+".name", "%q is not a name (letters, digits, . _ @ -)", t.Name)
		case dup:
			v.ps.add(p+".name", "token %q is already defined at tokens[%d]", t.Name, first)
		default:
			names[t.Name] = i
		}
		switch {
		case t.SHA256 != "" && v.refSet(p+".token", t.Token):
			v.ps.add(p, "set sha256 or token, not both")
		case t.SHA256 != "":
			// Never echo it: a pasted token would land here.
			if !hex64RE.MatchString(t.SHA256) {
				v.ps.add(p+".sha256", "not 64 hex digits; write the token's SHA-256 (sha256sum), or use token: {env: NAME}")
			} else if first, dup := hashes[strings.ToLower(t.SHA256)]; dup {
				v.ps.add(p+".sha256", "same token as tokens[%d]", first)
			} else {
				hashes[strings.ToLower(t.SHA256)] = i
			}
		case !v.refSet(p+".token", t.Token):
			v.ps.add(p, "needs sha256 (the token's SHA-256 in hex) or token (a reference)")
		default:
			v.ref(p+".token", t.Token)
		}
	}
	v.doors()
	if h.MaxBodyBytes < 1024 || h.MaxBodyBytes > 64<<20 {
		v.ps.add(hp+".max_body_bytes", "must be between 1024 and %d", 64<<20)
	}
	seen := map[string]string{}
	for _, env := range v.c.EnvironmentNames() {
		for i, m := range v.c.Environments[env].LakiConnect.MasterMerchants {
			if m.SecurityWebhook == nil || m.SecurityWebhook.Path == "" {
				continue
			}
			p := indexPath(childPath("environments", string(env))+".lakiconnect.master_merchants", i) + ".security_webhook.path"
			if first, dup := seen[m.SecurityWebhook.Path]; dup {
				v.ps.add(p, "path %s is already used at %s", m.SecurityWebhook.Path, first)
			}
			seen[m.SecurityWebhook.Path] = p
		}
	}
}
