package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/fakeslack"
	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// The example config's routes, end to end: a production compromise
// rotation that fails reaches every receiver a matching route names (the
// security channel once, paging the on-call group and the secret's owners;
// the rotations channel; the console log), through the real daemon, its
// HTTP API and slack-go.
func TestExampleRoutesDeliverAFailedProductionCompromiseEverywhere(t *testing.T) {
	const name = "payments/production/checkout-api-key"
	cfg, err := config.Load("../config/example.yaml")
	require.NoError(t, err)
	// Only what ties the example to real infrastructure is changed: Slack's
	// and LakiConnect's URLs, the listener and files.
	slackSrv := fakeslack.Start(t, fakeslack.Options{OnlyPostMessage: true})
	cfg.Notifications.Slack.APIURL = slackSrv.URL + "/api/"
	cfg.HTTP.TLS = config.TLSConfig{}
	cfg.HTTP.Listen = "127.0.0.1:8443" // not listened on: the test serves on its own listener
	cfg.HTTP.AllowedClients = nil
	cfg.HTTP.Tokens = cfg.HTTP.Tokens[:1] // ci-pipeline: sha256 of "test"; the other is a file on a real host
	cfg.Audit.File = ""
	cfg.Audit.Stdout = true
	cfg.Audit.Anchor = nil // it ships the file, which this test does not keep
	require.Equal(t, "ci-pipeline", cfg.HTTP.Tokens[0].Name)

	// LakiConnect refuses every call (a management key without rights), a
	// failure no retry cures.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":"forbidden","message":"refused for the test"}}`))
	}))
	t.Cleanup(down.Close)

	ctx := context.Background()
	stores := map[laki.Environment]secretstore.Store{}
	for env, ec := range cfg.Environments {
		ec.LakiConnect.BaseURL = down.URL + "/v1"
		st, err := localstore.Open("")
		require.NoError(t, err)
		stores[env] = st
		for _, mm := range ec.LakiConnect.MasterMerchants {
			mgmt, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(env), MasterMerchantID: mm.ID,
				KeyID: "key_MGMT" + strings.ToUpper(string(env)), Secret: secret.New("lk_mgmt_value_" + string(env) + "_0000000000"),
				Scopes: []string{"api_keys:read", "api_keys:write"}, CreatedAt: time.Now().UTC()}.Encode()
			require.NoError(t, err)
			_, err = st.Create(ctx, mm.ManagementKey.Secret, "", nil, &mgmt)
			require.NoError(t, err)
		}
	}
	prod := stores[laki.Production].(*localstore.Store)
	signing := secret.New("slack-signing-secret-0123456789")
	_, err = prod.Create(ctx, "lakirotator/slack-signing-secret", "", nil, &signing)
	require.NoError(t, err)
	// The managed key whose rotation LakiConnect refuses.
	cred, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "production", MasterMerchantID: "mm_PRODUCTION000001",
		KeyID: "key_EXPOSED000000000000001", Secret: secret.New("lk_live_exposedvalue0000000000001"),
		Scopes: []string{"payments:read", "payments:write", "customers:read"}, CreatedAt: time.Now().UTC()}.Encode()
	require.NoError(t, err)
	_, err = prod.Create(ctx, name, "", nil, &cred)
	require.NoError(t, err)

	var logs, stdout syncbuf.Buffer
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Stdout: &stdout, Stores: stores,
		LookupEnv: func(k string) (string, bool) {
			if k == "LAKIROTATOR_SLACK_TOKEN" {
				return "xoxb-example-routes-test", true
			}
			return "", false
		},
		RetireInterval: time.Hour, RefreshInterval: time.Hour,
	})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx, ln) }()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the daemon did not stop")
		}
	}()

	client, err := httpapi.NewClient("http://"+ln.Addr().String(), secret.New("test"), nil)
	require.NoError(t, err)
	var trig httpapi.TriggerStatus
	require.Eventually(t, func() bool {
		trig, err = client.Trigger(ctx, httpapi.TriggerRequest{Secret: name, Cause: events.CauseCompromise,
			Reason: "key key_EXPOSED000000000000001 exposed (public_repository)", Requester: "security-team"})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "trigger: %v", err)
	final, err := client.Wait(ctx, trig.ID, 50*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, httpapi.StateFailed, final.State, "the rotation must fail for this test: %+v", final)

	failedOn := func(channel string) func(fakeslack.Message) bool {
		return func(p fakeslack.Message) bool {
			return p.Channel == channel && p.Header() == ":rotating_light: Compromise rotation failed: "+name
		}
	}
	require.Eventually(t, func() bool {
		return len(slackSrv.Find(failedOn("#security-alerts"))) > 0 && len(slackSrv.Find(failedOn("#lakirotator"))) > 0
	}, 10*time.Second, 20*time.Millisecond, "security and rotations channels; Slack got %+v", slackSrv.Find(func(fakeslack.Message) bool { return true }))
	// Let any duplicate arrive before counting.
	time.Sleep(200 * time.Millisecond)

	sec := slackSrv.Find(failedOn("#security-alerts"))
	require.Len(t, sec, 1, "two routes name the security receiver: one message")
	// The on-call user group, then the owners alice (a person) and payments-team (a group).
	const mentions = "<!subteam^S0SECONCALL> <@U0ALICE01> <!subteam^S0PAYMENTS>"
	assert.Equal(t, mentions, sec[0].Sections()[0], logs.String())
	assert.True(t, strings.HasPrefix(sec[0].Text, mentions+" "), sec[0].Text)
	body := strings.Join(sec[0].Sections(), "\n")
	assert.Contains(t, body, "Key key_EXPOSED000000000000001 exposed (public_repository).", "what was exposed")
	assert.Contains(t, body, "was not replaced and may still work at LakiConnect", "what was (not) done")
	assert.Contains(t, body, "*What you must do*\nAct now: if the exposed key still works, revoke it at LakiConnect by hand", "what the reader must do")

	rot := slackSrv.Find(failedOn("#lakirotator"))
	require.Len(t, rot, 1)
	assert.NotContains(t, rot[0].Text, "<@", "the rotations route pages no one")

	// The first message of the compromise says what happened, on the security channel.
	accepted := slackSrv.Find(func(p fakeslack.Message) bool {
		return p.Channel == "#security-alerts" && p.Header() == ":rotating_light: Credential exposed: rotating "+name+" now"
	})
	require.Len(t, accepted, 1, "Slack got %+v", slackSrv.Find(func(fakeslack.Message) bool { return true }))
	assert.Equal(t, mentions, accepted[0].Sections()[0])

	// The console receiver (kind log) got it too, with what to do.
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `"msg":"notification","title":"Compromise rotation failed: `+name+`"`)
	}, 5*time.Second, 20*time.Millisecond, "console log: %s", logs.String())
	assert.Contains(t, logs.String(), `"next_steps":"Act now: if the exposed key still works`)
	for _, leaked := range []string{"lk_live_exposedvalue0000000000001", signing.Reveal(), "xoxb-example-routes-test"} {
		assert.NotContains(t, logs.String()+stdout.String(), leaked)
	}
}

// Two rotations of one secret within the dedup window are two messages:
// notifications are told apart by rotation, not by secret.
func TestTwoRotationsOfOneSecretAreTwoMessages(t *testing.T) {
	w := newWorld(t, worldOptions{})
	slackSrv := fakeslack.Start(t, fakeslack.Options{OnlyPostMessage: true})
	w.cfgYAML = append(w.cfgYAML, fmt.Sprintf(`notifications:
  slack:
    api_url: %s/api/
    token: {env: LAKIROTATOR_TEST_TOKEN}
    channel: "#rotations"
  receivers: [{name: rotations, kind: slack}]
  routes:
    - {match: {steps: [rotation], outcomes: [succeeded]}, receiver: rotations}
  dedup_window: 10m
`, slackSrv.URL)...)
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	ctx := context.Background()
	var keys []string
	for i := range 2 {
		if i > 0 {
			// The second ask comes after the first rotation finished (a
			// millisecond is enough: asks and finishes are kept to the
			// millisecond), so it is a rotation of its own, not the same
			// ask delivered twice.
			w.clk.Advance(time.Millisecond)
		}
		st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "ops@example", Reason: "routine check"})
		require.NoError(t, err)
		final := w.waitTrigger(r, st.ID)
		require.Equal(t, httpapi.StateSucceeded, final.State, "%+v", final.Secrets)
		cur := w.current(secCheckout)
		w.remember(cur.Secret)
		keys = append(keys, cur.KeyID)
	}
	require.NotEqual(t, keys[0], keys[1])
	succeeded := func(p fakeslack.Message) bool { return strings.HasSuffix(p.Header(), "succeeded: "+secCheckout) }
	require.Eventually(t, func() bool { return len(slackSrv.Find(succeeded)) == 2 }, 10*time.Second, 20*time.Millisecond,
		"Slack got %d messages for two rotations within the window", len(slackSrv.Find(succeeded)))
	for i, p := range slackSrv.Find(succeeded) {
		assert.Equal(t, ":white_check_mark: Manual rotation succeeded: "+secCheckout, p.Header())
		key := ""
		for _, b := range p.Blocks {
			for _, f := range b.Fields {
				if v, ok := strings.CutPrefix(f.Text, "*Key*\n"); ok {
					key = v
				}
			}
		}
		assert.Contains(t, key, "new `…"+keys[i][len(keys[i])-4:]+"`", "message %d names its own new key", i)
	}
}
