package rotator_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/vaultserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/vaultstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// The crash and replica tests again, with the Vault KV v2 store on a real
// Vault server (devvault) in place of the in-memory store: the engine's
// invariants (roll forward after a crash at any step, replicas converge on
// one key) hold on Vault's check-and-set as on Secrets Manager's stages.

// vaultHarness is the simulator harness with secrets kept in Vault.
type vaultHarness struct {
	*harness
	srv *vaultserver.Server
	vs  *vaultstore.Store
}

func newVaultHarness(t *testing.T, srv *vaultserver.Server) *vaultHarness {
	t.Helper()
	return &vaultHarness{harness: newHarness(t), srv: srv, vs: vaultStore(t, srv)}
}

// vaultStore is one replica's store: its own client on the shared server.
func vaultStore(t *testing.T, srv *vaultserver.Server) *vaultstore.Store {
	t.Helper()
	s, err := vaultstore.New(vaultstore.Config{Address: srv.Addr, Mount: "secret",
		Auth: vaultstore.Auth{Method: vaultstore.AuthToken, Token: secret.New(srv.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// engineOn is an engine of this harness on store s.
func (h *vaultHarness) engineOn(s secretstore.Store, mod func(*rotator.Config)) *rotator.Engine {
	return h.engine(func(c *rotator.Config) {
		c.Store = s
		if mod != nil {
			mod(c)
		}
	})
}

// seedVaultKey makes a LakiConnect key and writes it into Vault by hand, as
// an operator onboarding a secret would.
func (h *vaultHarness) seedVaultKey(name string) inventory.ManagedSecret {
	h.t.Helper()
	v := h.seedCredential(name, laki.Sandbox, apiScopes)
	if err := vaultserver.Create(context.Background(), h.srv.Client(h.t), "secret", name, "", nil, &v); err != nil {
		h.t.Fatal(err)
	}
	return inventory.ManagedSecret{Name: name, Kind: inventory.KindAPIKey, Environment: laki.Sandbox,
		MasterMerchantID: h.fx.MasterMerchantID, Policy: "p", Owners: []string{"alice"}}
}

func (h *vaultHarness) vaultCurrent(name string) secretstore.Credential {
	h.t.Helper()
	v, err := h.vs.Get(context.Background(), name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := secretstore.DecodeCredential(name, v.Value)
	if err != nil {
		h.t.Fatal(err)
	}
	h.keep(c.Secret)
	return c
}

func (h *vaultHarness) vaultStages(name string) map[string][]string {
	h.t.Helper()
	sec, err := h.vs.Describe(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, v := range sec.Versions {
		if len(v.Stages) > 0 {
			out[v.ID] = v.Stages
		}
	}
	return out
}

// vaultName is a fresh secret name (one server serves many cases).
func vaultName(label string) string {
	return fmt.Sprintf("rotator/%s-%x", label, time.Now().UnixNano())
}

func TestVaultCrashAtEveryStepThenRestartRollsForward(t *testing.T) {
	srv := vaultserver.Start(t, vaultserver.Options{})
	steps := []rotator.Boundary{rotator.AfterCreate, rotator.AfterPut, rotator.AfterTest, rotator.AfterPromote, rotator.AfterEndOld}
	for _, cause := range []events.Cause{events.CauseScheduled, events.CauseCompromise} {
		for _, step := range steps {
			t.Run(fmt.Sprintf("%s/%s", cause, step), func(t *testing.T) {
				h := newVaultHarness(t, srv)
				ms := h.seedVaultKey(vaultName(fmt.Sprintf("crash-%s-%s", cause, step)))
				old := h.vaultCurrent(ms.Name)
				c := rotator.Trigger{Kind: cause, ID: "trigger-1", Source: events.SourceCLI, Actor: "bob"}
				ctx := context.Background()

				// The crashed engine and the restarted one are separate
				// processes: separate clients.
				if _, err := h.engineOn(vaultStore(t, srv), crashAt(step)).Rotate(ctx, ms, basePolicy(), c); !errors.Is(err, rotator.ErrAborted) {
					t.Fatalf("first engine: err = %v, want the crash", err)
				}
				var res rotator.Result
				var err error
				h.settling(func() { res, err = h.engineOn(h.vs, nil).Rotate(ctx, ms, basePolicy(), c) })
				if err != nil {
					t.Fatalf("restart: %v", err)
				}
				h.requireRolledForward(ms.Name, res, h.vaultCurrent(ms.Name), old, cause)
				vid := rotator.VersionID(h.vs.ARN(ms.Name), "trigger-1")
				st := h.vaultStages(ms.Name)
				if !slices.Equal(st[vid], []string{"AWSCURRENT", "AWSPENDING"}) || len(st) != 2 || !slices.Equal(st["kv-1"], []string{"AWSPREVIOUS"}) {
					t.Fatalf("stages %v, want AWSCURRENT and AWSPENDING on %s, AWSPREVIOUS on the seeded kv-1", st, vid)
				}
				h.fx.Clock.Advance(26 * time.Hour)
				sw, err := h.engineOn(h.vs, nil).Sweep(ctx, []inventory.ManagedSecret{ms})
				if err != nil || len(sw.Revoked) != 0 {
					t.Fatalf("sweep after restart: %+v %v", sw, err)
				}
			})
		}
	}
}

// Two replicas, each with its own Vault client, rotate the same secrets in
// the same slot at once: one key per secret, no error on either side.
func TestVaultTwoEnginesSameSlotConverge(t *testing.T) {
	srv := vaultserver.Start(t, vaultserver.Options{})
	h := newVaultHarness(t, srv)
	var secrets []inventory.ManagedSecret
	for i := range 5 {
		secrets = append(secrets, h.seedVaultKey(vaultName(fmt.Sprintf("r%d", i))))
	}
	a, b := h.engineOn(vaultStore(t, srv), nil), h.engineOn(vaultStore(t, srv), nil)
	for _, err := range h.rotateAsReplicas([]*rotator.Engine{a, b}, secrets, "2026-06-01T09:00:00Z") {
		t.Errorf("replica error: %v", err)
	}
	for _, ms := range secrets {
		h.requireOneRotatorKey(ms.Name, h.vaultCurrent(ms.Name))
		st := h.vaultStages(ms.Name)
		vid := rotator.VersionID(h.vs.ARN(ms.Name), "2026-06-01T09:00:00Z")
		if !slices.Equal(st[vid], []string{"AWSCURRENT", "AWSPENDING"}) {
			t.Fatalf("%s: stages %v, want AWSCURRENT and AWSPENDING on %s", ms.Name, st, vid)
		}
	}
}
