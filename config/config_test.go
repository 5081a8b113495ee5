package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// examplePolicies are the policy names example.yaml references (the files
// in policies/examples); the policies package owns the real loading.
var examplePolicies = []string{"checkout-service", "checkout-service-sandbox", "webhooks", "rotator-management-key"}

func TestExampleLoadsWithoutProblems(t *testing.T) {
	cfg, err := Load("example.yaml", WithKnownPolicies(func(name string) bool { return slices.Contains(examplePolicies, name) }))
	require.NoError(t, err)

	assert.Equal(t, []laki.Environment{laki.Production, laki.Sandbox}, cfg.EnvironmentNames())
	sandbox, ok := cfg.Environment(laki.Sandbox)
	require.True(t, ok)
	assert.Equal(t, "arn:aws:iam::111111111111:role/lakirotator-sandbox", sandbox.AWS.RoleARN)
	assert.Equal(t, float64(DefaultAWSReadRate), sandbox.AWS.ReadRate, "unset read_rate takes the default")
	prod, _ := cfg.Environment(laki.Production)
	assert.Equal(t, 200.0, prod.AWS.ReadRate, "a set read_rate is kept")
	assert.Equal(t, float64(DefaultLakiRateLimit), prod.LakiConnect.RateLimit)
	assert.Equal(t, 30*time.Second, prod.LakiConnect.Timeout.Std())
	_, ok = cfg.Environment("staging")
	assert.False(t, ok)

	mm, ok := cfg.MasterMerchant(laki.Production, "mm_PRODUCTION000001")
	require.True(t, ok)
	assert.Equal(t, "lakirotator/production/mm_PRODUCTION000001/management", mm.ManagementKey.Secret)
	assert.Equal(t, "/v1/lakiconnect/events/production/mm_PRODUCTION000001", mm.SecurityWebhook.Path, "default receiver path")

	got := cfg.ManagedSecrets()
	require.Len(t, got, 7)
	for _, m := range got {
		assert.NoError(t, m.Validate(), "every declared secret satisfies inventory's own check")
	}
	assert.Equal(t, inventory.ManagedSecret{
		Name: "payments/production/orders-webhook-secret", Kind: inventory.KindWebhookSecret,
		Environment: laki.Production, MasterMerchantID: "mm_PRODUCTION000001",
		EndpointID: "we_PRODUCTIONORDERS00000001", Policy: "webhooks", Owners: []string{"bob", "payments-team"},
	}, got[1])
	assert.Equal(t, inventory.ManagedSecret{
		Name: "lakirotator/production/mm_PRODUCTION000001/management", Kind: inventory.KindManagementKey,
		Environment: laki.Production, MasterMerchantID: "mm_PRODUCTION000001",
		Policy: "rotator-management-key", Owners: []string{"platform-security"},
	}, got[3])

	assert.Equal(t, []secretstore.TagFilter{
		{Key: inventory.TagManaged, Values: []string{"true"}},
		{Key: "team", Values: []string{"payments", "risk"}},
	}, cfg.DiscoveryTagFilters())

	assert.Equal(t, filepath.Join("..", "policies", "examples"), cfg.PoliciesDir, "relative to the config file")
	assert.Equal(t, time.Hour, cfg.Sweep.SafetyMargin.Std())
	assert.Equal(t, "example.yaml", cfg.File())
	assert.False(t, cfg.Audit.Stdout, "a file is set, so stdout stays off")
}

func TestExampleRoundTrips(t *testing.T) {
	cfg, err := Load("example.yaml")
	require.NoError(t, err)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	again, err := Parse("example.yaml", out)
	require.NoError(t, err, "marshalled config:\n%s", out)
	out2, err := yaml.Marshal(again)
	require.NoError(t, err)
	assert.Equal(t, string(out), string(out2))
	assert.Len(t, again.ManagedSecrets(), len(cfg.ManagedSecrets()))
}

// minimal is the smallest valid config; cases below add to it from line 10.
const minimal = `version: 1
environments:
  sandbox:
    aws: {region: eu-west-1}
    lakiconnect:
      base_url: https://sandbox.api.lakiconnect.example/v1
      master_merchants:
        - id: mm_AAAAAAAAAAAAAAAA
          management_key: {secret: mgmt/sandbox}
`

func TestMinimalConfigTakesDefaults(t *testing.T) {
	cfg, err := Parse("conf/min.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.Equal(t, StoreAWS, cfg.Store.Kind)
	assert.Equal(t, filepath.Join("conf", "policies"), cfg.PoliciesDir)
	assert.Equal(t, DefaultWorkers, cfg.Engine.Workers)
	assert.Equal(t, DefaultListen, cfg.HTTP.Listen)
	assert.True(t, cfg.Audit.Stdout, "with no audit file, records go to stdout")
	assert.Equal(t, LogAuto, cfg.Log.Format)
	assert.Empty(t, cfg.ManagedSecrets(), "a management key without policy is not rotated")
	assert.Nil(t, cfg.DiscoveryTagFilters(), "discovery is off by default")
	assert.NoError(t, cfg.Validate(), "a loaded config validates again")
}

func TestBrokenConfigs(t *testing.T) {
	known := WithKnownPolicies(func(name string) bool { return name == "std" })
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"empty file", ``, `f.yaml:1:1: the file is empty; it starts with version: 1`},
		{"not a mapping", `- a`, `f.yaml:1:1: expected a mapping of settings, got a list`},
		{"yaml syntax", "version: 1\nenvironments: [\n", `f.yaml:2:1: YAML syntax: did not find expected node content`},
		{"two documents", minimal + "---\nversion: 1\n", `f.yaml:10:1: only one YAML document is allowed (remove the ---)`},
		{"missing everything", `log: {level: info}`, "f.yaml:1:1: environments: required: configure sandbox, production or both\n" +
			"f.yaml:1:1: version: required: write version: 1 at the top"},
		{"wrong version", strings.Replace(minimal, "version: 1", "version: 2", 1), `f.yaml:1:10: version: unsupported version 2; this build reads version: 1`},
		{"unknown field", minimal + "polices_dir: p\n", `f.yaml:10:1: polices_dir: unknown field; known fields here: audit, auth_watch, discovery, engine, environments, ha, http, log, notifications, policies_dir, policy_scan, secrets, store, sweep, version`},
		{"duplicate key", minimal + "log: {level: info}\nlog: {level: debug}\n", `f.yaml:11:1: log: duplicate key, first written at line 10`},
		{"alias", minimal + "sweep: &s {schedule: \"@hourly\"}\npolicy_scan: *s\n", `f.yaml:11:14: policy_scan: YAML aliases (*name) are not supported: write the value out`},
		{"wrong types", minimal + "engine: {workers: many, backoff_max: 5}\nhttp: {listen: 8080}\n",
			"f.yaml:10:19: engine.workers: expected a whole number, got a string\n" +
				"f.yaml:10:38: engine.backoff_max: expected a duration such as 90s, 15m, 2h or 7d, got an integer (add a unit: 90s, 15m, 2h, 7d)\n" +
				"f.yaml:11:16: http.listen: expected a string, got an integer (put it in quotes to make it a string)"},
		{"bad duration", minimal + "auth_watch: {poll_interval: 5 minutes}\n", `f.yaml:10:29: auth_watch.poll_interval: "5 minutes" is not a duration: use a number and a unit (s, m, h, d), as in 90s, 15m, 2h or 7d`},
		{"unknown environment", strings.Replace(minimal, "  sandbox:", "  staging:", 1), `f.yaml:3:3: environments.staging: unknown environment "staging"; use sandbox or production`},
		{"environment fields", `version: 1
environments:
  production:
    aws: {region: Europe, endpoint: "http://moto.internal:5000", role_arn: "arn:aws:iam::12:role/x", read_rate: 0}
    lakiconnect:
      base_url: http://api.lakiconnect.example/v1
      rate_limit: 500
      master_merchants:
        - id: mm_short
          management_key: {secret: "has spaces"}
        - id: mm_short
`, `f.yaml:4:19: environments.production.aws.region: "Europe" is not an AWS region, as in eu-west-1` + "\n" +
			`f.yaml:4:37: environments.production.aws.endpoint: http:// is allowed only to loopback (localhost, 127.0.0.1, ::1); use https://` + "\n" +
			`f.yaml:4:76: environments.production.aws.role_arn: "arn:aws:iam::12:role/x" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)` + "\n" +
			`f.yaml:4:113: environments.production.aws.read_rate: must be more than 0 requests per second` + "\n" +
			`f.yaml:6:17: environments.production.lakiconnect.base_url: http:// is allowed only to loopback (localhost, 127.0.0.1, ::1); use https://` + "\n" +
			`f.yaml:7:19: environments.production.lakiconnect.rate_limit: must be more than 0 and at most 100 requests per second (LakiConnect's limit per key)` + "\n" +
			`f.yaml:9:15: environments.production.lakiconnect.master_merchants[0].id: "mm_short" is not a master merchant id (mm_ and 16 letters or digits)` + "\n" +
			`f.yaml:10:36: environments.production.lakiconnect.master_merchants[0].management_key.secret: "has spaces" is not a Secrets Manager secret name (1-512 of A-Z a-z 0-9 / _ + = . @ -)` + "\n" +
			"f.yaml:11:11: environments.production.lakiconnect.master_merchants[1].management_key.secret: required\n" +
			`f.yaml:11:15: environments.production.lakiconnect.master_merchants[1].id: "mm_short" is not a master merchant id (mm_ and 16 letters or digits)`},
		{"loopback http is fine", strings.Replace(minimal, "https://sandbox.api.lakiconnect.example/v1", "http://127.0.0.1:8443/v1", 1) + "store: {kind: locall}\n",
			`f.yaml:10:15: store.kind: "locall" is not one of aws, local, vault`},
		{"secrets", minimal + `secrets:
  - name: a
    kind: webhook_secret
    environment: sandbox
    master_merchant_id: mm_BBBBBBBBBBBBBBBB
    policy: std
  - name: a
    kind: api_key
    environment: production
    master_merchant_id: mm_AAAAAAAAAAAAAAAA
    endpoint_id: we_AAAAAAAAAAAAAAAAAAAAAAAA
    policy: nope
    owners: ["alice smith"]
  - {name: mgmt/sandbox, kind: management_key}
`, "f.yaml:11:5: secrets[0].endpoint_id: required for a webhook secret, as in we_0123456789abcdefghijklmn\n" +
			"f.yaml:14:25: secrets[0].master_merchant_id: mm_BBBBBBBBBBBBBBBB is not listed in environments.sandbox.lakiconnect.master_merchants\n" +
			`f.yaml:16:11: secrets[1].name: secret "a" is already declared at secrets[0].name` + "\n" +
			`f.yaml:18:18: secrets[1].environment: "production" is not a configured environment (sandbox)` + "\n" +
			"f.yaml:20:18: secrets[1].endpoint_id: goes only with kind: webhook_secret\n" +
			`f.yaml:21:13: secrets[1].policy: no policy named "nope" in policies` + "\n" +
			`f.yaml:22:14: secrets[1].owners[0]: "alice smith" is not a person or team name (letters, digits, . _ @ -; no spaces or commas)` + "\n" +
			"f.yaml:23:5: secrets[2].environment: required: one of the configured environments (sandbox)\n" +
			"f.yaml:23:5: secrets[2].master_merchant_id: required\n" +
			"f.yaml:23:5: secrets[2].policy: required: the name of a policy in policies_dir\n" +
			`f.yaml:23:12: secrets[2].name: secret "mgmt/sandbox" is already declared at environments.sandbox.lakiconnect.master_merchants[0].management_key.secret` + "\n" +
			"f.yaml:23:32: secrets[2].kind: management keys are declared under environments.<env>.lakiconnect.master_merchants[].management_key"},
		{"schedules and engine", minimal + `engine: {workers: 0, backoff_initial: 1m, backoff_max: 30s}
sweep: {schedule: "every hour", safety_margin: 10m}
policy_scan: {schedule: "61 * * * *"}
discovery: {enabled: true, refresh_interval: 10s, tag_filters: {team: [""]}}
`, "f.yaml:10:19: engine.workers: must be between 1 and 1024\n" +
			"f.yaml:10:56: engine.backoff_max: must be at least backoff_initial (1m)\n" +
			`f.yaml:11:19: sweep.schedule: not a cron schedule (minute hour day-of-month month day-of-week, or @every 1h): expected exactly 5 fields, found 2: [every hour]` + "\n" +
			"f.yaml:11:48: sweep.safety_margin: must be at least 30m: longer than a live rotation can hold a key it made before storing it\n" +
			"f.yaml:12:25: policy_scan.schedule: not a cron schedule (minute hour day-of-month month day-of-week, or @every 1h): end of range (61) above maximum (59): 61\n" +
			"f.yaml:13:46: discovery.refresh_interval: must be at least 1m\n" +
			"f.yaml:13:72: discovery.tag_filters.team[0]: a tag value is 1 to 256 characters"},
		{"notifications", minimal + `notifications:
  people: {alice: alice@example.com}
  receivers:
    - {name: chat, kind: slack}
    - {name: chat, kind: email}
    - {name: out, kind: log, channel: "#x"}
  routes:
    - match: {severities: [high], steps: [rotate], environments: [production], causes: [boredom], outcomes: [ok]}
      receiver: pager
      mentions: [alice, bob]
    - {}
`, `f.yaml:11:19: notifications.people.alice: "alice@example.com" is not a Slack member or user group id (such as U0123ABCD or S0123ABCD)` + "\n" +
			"f.yaml:13:26: notifications.receivers[0].kind: a slack receiver needs notifications.slack\n" +
			`f.yaml:14:14: notifications.receivers[1].name: receiver "chat" is already defined at receivers[0]` + "\n" +
			`f.yaml:14:26: notifications.receivers[1].kind: "email" is not one of slack, terminal, log` + "\n" +
			"f.yaml:15:39: notifications.receivers[2].channel: goes only with kind: slack\n" +
			`f.yaml:17:28: notifications.routes[0].match.severities[0]: "high" is not one of info, warning, critical` + "\n" +
			`f.yaml:17:43: notifications.routes[0].match.steps[0]: "rotate" is not one of trigger, create, test, promote, retire, rotation, sweep, violation, alert, auth` + "\n" +
			`f.yaml:17:67: notifications.routes[0].match.environments[0]: "production" is not a configured environment (sandbox)` + "\n" +
			`f.yaml:17:89: notifications.routes[0].match.causes[0]: "boredom" is not one of scheduled, compromise, personnel, manual` + "\n" +
			`f.yaml:17:110: notifications.routes[0].match.outcomes[0]: "ok" is not one of started, succeeded, failed, warning, refused, skipped` + "\n" +
			`f.yaml:18:17: notifications.routes[0].receiver: no receiver named "pager" in notifications.receivers` + "\n" +
			`f.yaml:19:25: notifications.routes[0].mentions[1]: "bob" is neither owners nor a name in notifications.people` + "\n" +
			"f.yaml:20:7: notifications.routes[1].receiver: required: the name of a receiver"},
		{"slack", minimal + `notifications:
  slack:
    api_url: https://user:pw@slack.example/api/
    webhook_url: {env: SLACK_HOOK, file: /run/hook}
    signing_secret: {aws_secret: slack/signing, environment: production}
    allowed_users: [alice]
  receivers:
    - {name: chat, kind: slack, channel: "#ops"}
`, "f.yaml:12:14: notifications.slack.api_url: URL must not hold credentials (user:password@); use a secret reference\n" +
			"f.yaml:13:18: notifications.slack.webhook_url: set exactly one of env, file and aws_secret\n" +
			"f.yaml:14:21: notifications.slack.signing_secret: aws_secret needs environment: one of the configured environments (sandbox)\n" +
			`f.yaml:15:21: notifications.slack.allowed_users[0]: "alice" is not a Slack member id (such as U0123ABCD)` + "\n" +
			"f.yaml:17:42: notifications.receivers[0].channel: choosing a channel needs notifications.slack.token; an incoming webhook posts only to its own channel"},
		{"http", minimal + `http:
  listen: "0.0.0.0:8443"
  tls: {cert_file: server.crt}
  tokens:
    - {name: ci, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    - {name: ci, sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08}
    - {name: both, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a09, token: {env: T}}
    - {name: none}
  allowed_clients: [10.0.0.0/33]
  max_body_bytes: 10
audit: {stdout: false}
`, "f.yaml:12:8: http.tls: set both cert_file and key_file, or neither\n" +
			`f.yaml:15:14: http.tokens[1].name: token "ci" is already defined at tokens[0]` + "\n" +
			"f.yaml:15:26: http.tokens[1].sha256: same token as tokens[0]\n" +
			"f.yaml:16:7: http.tokens[2]: set sha256 or token, not both\n" +
			"f.yaml:17:7: http.tokens[3]: needs sha256 (the token's SHA-256 in hex) or token (a reference)\n" +
			`f.yaml:18:21: http.allowed_clients[0]: "10.0.0.0/33" is not an IP address or CIDR prefix` + "\n" +
			"f.yaml:19:19: http.max_body_bytes: must be between 1024 and 67108864\n" +
			"f.yaml:20:8: audit: audit records would go nowhere: set file or stdout: true"},
		{"empty environment and store", "version: 1\nenvironments:\n  production:\nstore: {kind: local}\n",
			"f.yaml:3:3: environments.production: empty: needs aws and lakiconnect\n" +
				"f.yaml:4:8: store.local_path: required with kind: local"},
		{"cross references", `version: 1
environments:
  sandbox:
    aws: {region: eu-west-1, external_id: x}
    lakiconnect:
      base_url: https://sandbox.api.lakiconnect.example/v1
      master_merchants:
        - id: mm_AAAAAAAAAAAAAAAA
          management_key: {secret: mgmt/a}
          security_webhook: {endpoint_id: we_AAAAAAAAAAAAAAAAAAAAAAAA, secret: hook/a, path: /events}
        - id: mm_AAAAAAAAAAAAAAAA
          management_key: {secret: mgmt/a}
          security_webhook: {endpoint_id: we_x, secret: hook/b, path: /events}
notifications:
  slack: {token: {env: SLACK_TOKEN}}
  receivers: [{name: chat, kind: slack}]
http:
  tls: {client_ca_file: ca.pem}
`, "f.yaml:4:43: environments.sandbox.aws.external_id: goes only with role_arn\n" +
			"f.yaml:11:15: environments.sandbox.lakiconnect.master_merchants[1].id: mm_AAAAAAAAAAAAAAAA is already listed at master_merchants[0]\n" +
			`f.yaml:12:36: environments.sandbox.lakiconnect.master_merchants[1].management_key.secret: secret "mgmt/a" is already declared at environments.sandbox.lakiconnect.master_merchants[0].management_key.secret` + "\n" +
			`f.yaml:13:43: environments.sandbox.lakiconnect.master_merchants[1].security_webhook.endpoint_id: "we_x" is not a webhook endpoint id (we_ and 24 letters or digits)` + "\n" +
			"f.yaml:13:71: environments.sandbox.lakiconnect.master_merchants[1].security_webhook.path: path /events is already used at environments.sandbox.lakiconnect.master_merchants[0].security_webhook.path\n" +
			"f.yaml:16:15: notifications.receivers[0].channel: required (or set notifications.slack.channel)\n" +
			"f.yaml:18:25: http.tls.client_ca_file: needs cert_file and key_file"},
		{"plaintext beyond loopback", minimal + "http: {listen: \":8080\"}\nlog: {format: xml, level: verbose}\n",
			"f.yaml:10:16: http.listen: listening beyond loopback needs tls (cert_file and key_file), or allow_plaintext: true behind a TLS-terminating proxy\n" +
				`f.yaml:11:15: log.format: "xml" is not one of json, text, auto` + "\n" +
				`f.yaml:11:27: log.level: "verbose" is not one of debug, info, warn, error`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(tc.yaml), known)
			require.Error(t, err)
			assert.Nil(t, cfg)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "error type %T", err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestPolicyCheckSeesKindAndEnvironment(t *testing.T) {
	data := minimal + `secrets:
  - {name: a, kind: api_key, environment: sandbox, master_merchant_id: mm_AAAAAAAAAAAAAAAA, policy: webhooks}
`
	var seen []string
	_, err := Parse("f.yaml", []byte(data), WithPolicyCheck(func(name string, kind inventory.Kind, env laki.Environment) error {
		seen = append(seen, name+" "+string(kind)+" "+string(env))
		if kind != inventory.KindWebhookSecret {
			return errors.New("is for webhook_secret, not " + string(kind))
		}
		return nil
	}))
	assert.EqualError(t, err, `f.yaml:11:101: secrets[0].policy: policy "webhooks": is for webhook_secret, not api_key`)
	assert.Equal(t, []string{"webhooks api_key sandbox"}, seen)
}

func TestLoadNamesMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "nope.yaml")
}

func TestValidateCodeBuiltConfig(t *testing.T) {
	cfg := &Config{Version: 1}
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "environments: required: configure sandbox, production or both")
	assert.NotContains(t, err.Error(), ":0:", "no made-up positions for a config built in code")
}

// Which routes deliver what is tested end to end through the daemon
// (daemon/notifications_test.go); here only the lookup.
func TestReceiverLookup(t *testing.T) {
	cfg, err := Load("example.yaml")
	require.NoError(t, err)
	n := cfg.Notifications
	r, ok := n.Receiver("security")
	require.True(t, ok)
	assert.Equal(t, "#security-alerts", r.Channel)
}

func TestRouteContinueIsExplicit(t *testing.T) {
	cfg, err := Parse("conf.yaml", []byte(minimal+`notifications:
  receivers: [{name: console, kind: log}]
  routes:
    - {match: {severities: [critical]}, receiver: console, continue: false}
    - {receiver: console}
    - {receiver: console, continue: true}
`))
	require.NoError(t, err)
	r := cfg.Notifications.Routes
	assert.False(t, r[0].Continues(), "continue: false stops the walk")
	assert.True(t, r[1].Continues(), "unset: every matching route delivers")
	assert.True(t, r[2].Continues())
}

func TestCheckDiscovered(t *testing.T) {
	cfg, err := Load("example.yaml")
	require.NoError(t, err)
	ok := inventory.ManagedSecret{Name: "risk/production/scorer", Kind: inventory.KindAPIKey, Environment: laki.Production,
		MasterMerchantID: "mm_PRODUCTION000001", Policy: "reporting-job"}
	assert.NoError(t, cfg.CheckDiscovered(ok))

	other := ok
	other.MasterMerchantID = "mm_OTHEROTHEROTHER"
	assert.EqualError(t, cfg.CheckDiscovered(other), `discovered secret "risk/production/scorer": master merchant mm_OTHEROTHEROTHER is not listed for production`)

	dup := ok
	dup.Name = "payments/production/checkout-api-key"
	dup.Kind = inventory.KindManagementKey
	assert.EqualError(t, cfg.CheckDiscovered(dup), `discovered secret "payments/production/checkout-api-key": management keys are declared in the config, not discovered; also declared in the config, whose entry is used`)

	minCfg, err := Parse("m.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.EqualError(t, minCfg.CheckDiscovered(ok), `discovered secret "risk/production/scorer": environment production is not configured`)

	incomplete := ok
	incomplete.Policy = ""
	assert.ErrorContains(t, cfg.CheckDiscovered(incomplete), "policy is empty")
}
