package authwatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/authwatch"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// A consumer left on a retired key, against the simulator: its refused
// requests are counted by LakiConnect, read by the watcher through the real
// client, and raise one alert per window that names the key but never
// carries its secret.
func TestRetiredKeyBurstAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	fx := lakisimtest.Start(t)
	old, err := fx.Sim.CreateKey(laki.Production, fx.MasterMerchantID, "checkout (old)", []laki.Scope{laki.ScopePaymentsRead})
	require.NoError(t, err)
	require.NoError(t, fx.Sim.RevokeKey(old.ID, "revoked_by_api"))

	mgmt, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: fx.ProductionURL, APIKey: fx.ProductionKey, MaxRetries: -1})
	require.NoError(t, err)
	stale, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: fx.ProductionURL, APIKey: old.Secret, MaxRetries: -1})
	require.NoError(t, err)

	pol := policies.Policy{Name: "checkout", Kind: inventory.KindAPIKey,
		Alerts: policies.Alerts{Unauthorized401: 10, Forbidden403: 5, Window: 15 * time.Minute}}
	set, err := policies.NewSet(pol)
	require.NoError(t, err)
	rec := &events.Recorder{}
	w := &authwatch.Watcher{
		Merchants: []authwatch.Merchant{{Merchant: laki.Merchant{Environment: laki.Production, MasterMerchantID: fx.MasterMerchantID}, Failures: mgmt}},
		Policies:  set,
		Keys: authwatch.KeysFunc(func(_ laki.Environment, _, id string) (authwatch.KeyInfo, bool) {
			if id == old.ID {
				return authwatch.KeyInfo{State: authwatch.Retired, Secret: "prod/checkout", Kind: inventory.KindAPIKey, Policy: pol}, true
			}
			return authwatch.KeyInfo{}, false
		}),
		Clock: fx.Clock,
		Sink:  rec,
	}

	for minute := 0; minute < 20; minute++ {
		for range 5 {
			_, err := stale.WhoAmI(ctx)
			var apiErr *lakiconnect.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, 401, apiErr.StatusCode)
		}
		require.NoError(t, w.Poll(ctx))
		fx.Clock.Advance(time.Minute)
	}
	var alerts []events.Event
	for _, e := range rec.Events() {
		if e.Details["reason"] == authwatch.ReasonUnauthorizedRetired {
			alerts = append(alerts, e)
		}
	}
	// 5 a minute reaches 10 at the second poll (minute 1); the next window opens at minute 16.
	require.Len(t, alerts, 2, "one alert per 15-minute window, not one per request")
	assert.Equal(t, old.ID, alerts[0].KeyID)
	assert.Equal(t, "10", alerts[0].Details["count"])
	assert.Equal(t, 15*time.Minute, alerts[1].Time.Sub(alerts[0].Time))

	out, err := json.Marshal(rec.Events())
	require.NoError(t, err)
	for _, s := range []string{old.Secret.Reveal(), fx.ProductionKey.Reveal()} {
		assert.False(t, strings.Contains(string(out)+fmt.Sprintf("%+v", rec.Events()), s), "events carry a secret value")
	}
}
