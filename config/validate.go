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

func (v *validator) environments() {
	c := v.c
	if len(c.Environments) == 0 {
		v.ps.add("environments", "required: configure sandbox, production or both")
	}
	// Walk in sorted order so duplicate-name problems name the first one stably.
	for _, name := range sortedKeys(c.Environments) {
		e := c.Environments[name]
		p := childPath("environments", string(name))
		if !name.Valid() {
			v.ps.addKey(p, "unknown environment %q; use sandbox or production", name)
			continue
		}
		if e == nil {
			v.ps.addKey(p, "empty: needs aws and lakiconnect")
			continue
		}
		// A Vault store needs no AWS settings unless they are written.
		if c.Store.Kind != StoreVault || v.c.pos.set(p+".aws") {
			v.aws(p+".aws", e.AWS)
		}
		if c.Store.Kind == StoreVault {
			v.vault(p+".vault", e.Vault)
		} else if e.Vault != nil {
			v.ps.add(p+".vault", "goes only with store.kind: vault")
		}
		v.lakiconnect(p+".lakiconnect", name, e.LakiConnect)
		if eb := e.EventBridge; eb != nil {
			if eb.Bus == "" {
				v.ps.add(p+".eventbridge.bus", "required: the event bus name or ARN")
			}
			if eb.Attempts < 0 || eb.Attempts > 50 {
				v.ps.add(p+".eventbridge.attempts", "%d is not within 0-50", eb.Attempts)
			}
		}
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v *validator) aws(p string, a AWSConfig) {
	switch {
	case a.Region == "":
		v.ps.add(p+".region", "required, as in eu-west-1")
	case !regionRE.MatchString(a.Region):
		v.ps.add(p+".region", "%q is not an AWS region, as in eu-west-1", a.Region)
	}
	v.url(p+".endpoint", a.Endpoint, false)
	if a.RoleARN != "" && !roleARNRE.MatchString(a.RoleARN) {
		v.ps.add(p+".role_arn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", a.RoleARN)
	}
	if a.ExternalID != "" && a.RoleARN == "" {
		v.ps.add(p+".external_id", "goes only with role_arn")
	}
	if a.ReadRate <= 0 {
		v.ps.add(p+".read_rate", "must be more than 0 requests per second")
	}
	if a.WriteRate <= 0 {
		v.ps.add(p+".write_rate", "must be more than 0 requests per second")
	}
	if a.MaxAttempts < 1 || a.MaxAttempts > 20 {
		v.ps.add(p+".max_attempts", "must be between 1 and 20")
	}
	v.durationAtLeast(p+".timeout", a.Timeout, Duration(time.Second))
}

func (v *validator) lakiconnect(p string, env laki.Environment, l LakiConnectConfig) {
	v.url(p+".base_url", l.BaseURL, true)
	if l.RateLimit <= 0 || l.RateLimit > MaxLakiRateLimit {
		v.ps.add(p+".rate_limit", "must be more than 0 and at most %d requests per second (LakiConnect's limit per key)", MaxLakiRateLimit)
	}
	v.durationAtLeast(p+".timeout", l.Timeout, Duration(time.Second))
	if len(l.MasterMerchants) == 0 {
		v.ps.add(p+".master_merchants", "required: at least one master merchant with its management key")
	}
	ids := map[string]int{}
	for i, m := range l.MasterMerchants {
		mp := indexPath(p+".master_merchants", i)
		switch first, dup := ids[m.ID]; {
		case m.ID == "":
			v.ps.add(mp+".id", "required, as in mm_0123456789abcdef")
		case !laki.IsMasterMerchantID(m.ID):
			v.ps.add(mp+".id", "%q is not a master merchant id (mm_ and 16 letters or digits)", m.ID)
		case dup:
			v.ps.add(mp+".id", "%s is already listed at master_merchants[%d]", m.ID, first)
		default:
			ids[m.ID] = i
		}
		v.secretName(mp+".management_key.secret", m.ManagementKey.Secret)
		if m.ManagementKey.Policy != "" {
			v.policy(mp+".management_key.policy", m.ManagementKey.Policy, inventory.KindManagementKey, env)
		}
		v.owners(mp+".management_key.owners", m.ManagementKey.Owners)
		if w := m.SecurityWebhook; w != nil {
			wp := mp + ".security_webhook"
			v.endpointID(wp+".endpoint_id", w.EndpointID)
			v.secretName(wp+".secret", w.Secret)
			if !strings.HasPrefix(w.Path, "/") {
				v.ps.add(wp+".path", "must start with /")
			}
			if w.Policy != "" {
				v.policy(wp+".policy", w.Policy, inventory.KindWebhookSecret, env)
			}
			v.owners(wp+".owners", w.Owners)
		}
	}
}

func (v *validator) endpointID(path, id string) {
	switch {
	case id == "":
		v.ps.add(path, "required for a webhook secret, as in we_0123456789abcdefghijklmn")
	case !laki.IsEndpointID(id):
		v.ps.add(path, "%q is not a webhook endpoint id (we_ and 24 letters or digits)", id)
	}
}

func (v *validator) store() {
	s := v.c.Store
	switch s.Kind {
	case StoreAWS:
		if s.LocalPath != "" {
			v.ps.add("store.local_path", "goes only with kind: local")
		}
	case StoreLocal:
		if s.LocalPath == "" {
			v.ps.add("store.local_path", "required with kind: local")
		}
	case StoreVault:
		if s.LocalPath != "" {
			v.ps.add("store.local_path", "goes only with kind: local")
		}
	default:
		v.ps.add("store.kind", "%q is not one of aws, local, vault", s.Kind)
	}
}

func (v *validator) secrets() {
	c := v.c
	for i, s := range c.Secrets {
		p := indexPath("secrets", i)
		v.secretName(p+".name", s.Name)
		switch s.Kind {
		case inventory.KindAPIKey, inventory.KindWebhookSecret:
		case "":
			v.ps.add(p+".kind", "required: api_key or webhook_secret")
		case inventory.KindManagementKey:
			v.ps.add(p+".kind", "management keys are declared under environments.<env>.lakiconnect.master_merchants[].management_key")
		default:
			v.ps.add(p+".kind", "%q is not one of api_key, webhook_secret", s.Kind)
		}
		env, envOK := c.Environments[s.Environment]
		switch {
		case s.Environment == "":
			v.ps.add(p+".environment", "required: one of the configured environments (%s)", envList(c.Environments))
		case !envOK || !s.Environment.Valid():
			v.ps.add(p+".environment", "%q is not a configured environment (%s)", s.Environment, envList(c.Environments))
		}
		switch {
		case s.MasterMerchantID == "":
			v.ps.add(p+".master_merchant_id", "required")
		case !laki.IsMasterMerchantID(s.MasterMerchantID):
			v.ps.add(p+".master_merchant_id", "%q is not a master merchant id (mm_ and 16 letters or digits)", s.MasterMerchantID)
		case envOK && env != nil:
			if _, ok := c.MasterMerchant(s.Environment, s.MasterMerchantID); !ok {
				v.ps.add(p+".master_merchant_id", "%s is not listed in environments.%s.lakiconnect.master_merchants", s.MasterMerchantID, s.Environment)
			}
		}
		if s.Kind == inventory.KindWebhookSecret {
			v.endpointID(p+".endpoint_id", s.EndpointID)
		} else if s.EndpointID != "" {
			v.ps.add(p+".endpoint_id", "goes only with kind: webhook_secret")
		}
		v.policy(p+".policy", s.Policy, s.Kind, s.Environment)
		v.owners(p+".owners", s.Owners)
	}
}

func (v *validator) discovery() {
	d := v.c.Discovery
	for _, k := range sortedKeys(d.TagFilters) {
		p := childPath("discovery.tag_filters", k)
		if len(k) > 128 {
			v.ps.addKey(p, "a tag key is at most 128 characters")
		}
		for i, val := range d.TagFilters[k] {
			if val == "" || len(val) > 256 {
				v.ps.add(indexPath(p, i), "a tag value is 1 to 256 characters")
			}
		}
	}
	if d.Enabled {
		v.durationAtLeast("discovery.refresh_interval", d.RefreshInterval, Duration(time.Minute))
	}
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

func joinNames[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func (v *validator) notifications() {
	n := v.c.Notifications
	const np = "notifications"
	slack := n.Slack
	tokenSet := false
	if slack != nil {
		sp := np + ".slack"
		v.url(sp+".api_url", slack.APIURL, true)
		tokenSet = v.refSet(sp+".token", slack.Token)
		if !tokenSet && !v.refSet(sp+".webhook_url", slack.WebhookURL) {
			v.ps.add(sp, "needs token (a bot token, to post to any channel) or webhook_url (an incoming webhook)")
		}
		for _, r := range []struct {
			path string
			ref  SecretRef
		}{{sp + ".token", slack.Token}, {sp + ".webhook_url", slack.WebhookURL}, {sp + ".signing_secret", slack.SigningSecret}} {
			if v.refSet(r.path, r.ref) {
				v.ref(r.path, r.ref)
			}
		}
		if slack.Channel != "" && !slackChannelRE.MatchString(slack.Channel) {
			v.ps.add(sp+".channel", "%q is not a Slack channel (#name or a channel id such as C0123ABCD)", slack.Channel)
		}
		for i, u := range slack.AllowedUsers {
			if !slackUserRE.MatchString(u) {
				v.ps.add(indexPath(sp+".allowed_users", i), "%q is not a Slack member id (such as U0123ABCD)", u)
			}
		}
		if len(slack.AllowedUsers) > 0 && !v.refSet(sp+".signing_secret", slack.SigningSecret) {
			v.ps.add(sp+".signing_secret", "required when allowed_users may act from Slack: requests from Slack are verified with it")
		}
	}
	for _, name := range sortedKeys(n.People) {
		p := childPath(np+".people", name)
		if !simpleNameRE.MatchString(name) {
			v.ps.addKey(p, "%q is not a person or team name (letters, digits, . _ @ -)", name)
		}
		if id := n.People[name]; !slackMentionRE.MatchString(id) {
			v.ps.add(p, "%q is not a Slack member or user group id (such as U0123ABCD or S0123ABCD)", id)
		}
	}
	receivers := map[string]int{}
	for i, r := range n.Receivers {
		p := indexPath(np+".receivers", i)
		switch first, dup := receivers[r.Name]; {
		case r.Name == "":
			v.ps.add(p+".name", "required")
		case dup:
			v.ps.add(p+".name", "receiver %q is already defined at receivers[%d]", r.Name, first)
		default:
			receivers[r.Name] = i
		}
		switch r.Kind {
		case ReceiverSlack:
			switch {
			case slack == nil:
				v.ps.add(p+".kind", "a slack receiver needs notifications.slack")
			case r.Channel != "" && !slackChannelRE.MatchString(r.Channel):
				v.ps.add(p+".channel", "%q is not a Slack channel (#name or a channel id such as C0123ABCD)", r.Channel)
			case r.Channel != "" && !tokenSet:
				v.ps.add(p+".channel", "choosing a channel needs notifications.slack.token; an incoming webhook posts only to its own channel")
			case r.Channel == "" && slack.Channel == "" && tokenSet:
				v.ps.add(p+".channel", "required (or set notifications.slack.channel)")
			}
		case ReceiverTerminal, ReceiverLog:
			if r.Channel != "" {
				v.ps.add(p+".channel", "goes only with kind: slack")
			}
		case "":
			v.ps.add(p+".kind", "required: slack, terminal or log")
		default:
			v.ps.add(p+".kind", "%q is not one of slack, terminal, log", r.Kind)
		}
	}
	for i, r := range n.Routes {
		p := indexPath(np+".routes", i)
		if r.Receiver == "" {
			v.ps.add(p+".receiver", "required: the name of a receiver")
		} else if _, ok := receivers[r.Receiver]; !ok {
			v.ps.add(p+".receiver", "no receiver named %q in notifications.receivers", r.Receiver)
		}
		m := r.Match
		for j, env := range m.Environments {
			if _, ok := v.c.Environments[env]; !ok || !env.Valid() {
				v.ps.add(indexPath(p+".match.environments", j), "%q is not a configured environment (%s)", env, envList(v.c.Environments))
			}
		}
		for j, s := range m.Severities {
			if !slices.Contains(allSeverities, s) {
				v.ps.add(indexPath(p+".match.severities", j), "%q is not one of %s", s, joinNames(allSeverities))
			}
		}
		for j, c := range m.Causes {
			if !slices.Contains(allCauses, c) {
				v.ps.add(indexPath(p+".match.causes", j), "%q is not one of %s", c, joinNames(allCauses))
			}
		}
		for j, s := range m.Steps {
			if !slices.Contains(allSteps, s) {
				v.ps.add(indexPath(p+".match.steps", j), "%q is not one of %s", s, joinNames(allSteps))
			}
		}
		for j, o := range m.Outcomes {
			if !slices.Contains(allOutcomes, o) {
				v.ps.add(indexPath(p+".match.outcomes", j), "%q is not one of %s", o, joinNames(allOutcomes))
			}
		}
		for j, who := range r.Mentions {
			if _, ok := n.People[who]; !ok && who != MentionOwners {
				v.ps.add(indexPath(p+".mentions", j), "%q is neither owners nor a name in notifications.people", who)
			}
		}
	}
	if n.DedupWindow < 0 {
		v.ps.add(np+".dedup_window", "must not be negative")
	}
	if n.DigestInterval < 0 {
		v.ps.add(np+".digest_interval", "must not be negative")
	}
}

func (v *validator) http() {
	h := v.c.HTTP
	const hp = "http"
	host, port, err := net.SplitHostPort(h.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		v.ps.add(hp+".listen", "%q is not host:port, as in 127.0.0.1:8080 or :8443", h.Listen)
	} else if !h.TLS.Enabled() && !h.AllowPlaintext && !IsLoopbackHost(host) {
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
