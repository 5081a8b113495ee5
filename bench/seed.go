package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// LakiConnect allows 50 live keys per master merchant and environment, and a
// rotation holds two per secret during the grace: 20 API-key secrets per
// merchant leave room for both plus the management key. Webhook secrets have
// no per-merchant limit; spreading them keeps each management key under its
// own rate limit.
const (
	apiKeysPerMerchant  = 20
	webhooksPerMerchant = 200
	// apiKeyShare is the part of the secrets that are API keys (at least one);
	// the rest are webhook signing secrets, as on a platform with many
	// sub-merchant endpoints.
	apiKeyShare = 10
	seedWorkers = 8
	// OwnerName owns the secrets of the personnel measurement.
	OwnerName = "owner-1"
	// runTag marks one run's secrets, so a reused moto keeps runs apart.
	runTag = "lakibench:run"
)

var benchScopes = []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite}

// seeded is what seeding made: the management keys per merchant and, per
// API-key secret, the LakiConnect key id the secret holds (for the exposure).
type seeded struct {
	keys       map[laki.Merchant]lakiconnect.KeySource
	apiKeyIDs  map[string]string // secret name -> key id in AWSCURRENT
	merchantOf map[string]string // secret name -> master merchant
	names      []string          // every secret, API keys first
	issued     []secret.Value    // every secret value made, for the leak scan
	mgmt       []laki.APIKeyWithSecret
}

type seedSpec struct {
	name   string
	kind   inventory.Kind
	owner  string
	env    laki.Environment
	policy string
}

// seedPlan says what to seed: n secrets in one environment (one AWS
// account), owners of them (the last) with the owner tag, names under
// prefix. With unscheduled set (the fleet run), the owner's secrets and the
// first API key carry policies without a slot, so that the scheduled batch
// is the rest alone.
type seedPlan struct {
	env         laki.Environment
	prefix      string
	n, owners   int
	unscheduled bool
}

// seed makes n managed secrets at the simulator and in Secrets Manager,
// tagged for discovery. API keys are made through the Management API with the
// metadata the rotator puts on its own keys, as if a previous rotation had
// made them (steady state); webhook endpoints start with one signing secret.
// The last owners secrets carry the owner tag.
func seed(ctx context.Context, sim simulator, mgmtClient *lakiconnect.Client, smc *sm.Client, runID string, plan seedPlan) (*seeded, error) {
	n, owners, env := plan.n, plan.owners, plan.env
	if env == "" {
		env = laki.Sandbox
	}
	prefix := plan.prefix
	if prefix == "" {
		prefix = "bench/" + runID + "/"
	}
	nKeys := max(1, n/apiKeyShare)
	specs := make([]seedSpec, n)
	for i := range specs {
		kind, label := inventory.KindWebhookSecret, "wh"
		if i < nKeys {
			kind, label = inventory.KindAPIKey, "ak"
		}
		specs[i] = seedSpec{name: fmt.Sprintf("%s%s-%05d", prefix, label, i), kind: kind, env: env}
		if i >= n-owners {
			specs[i].owner = OwnerName
		}
		specs[i].policy = policyFor(kind, plan.unscheduled && (i == 0 || specs[i].owner != ""))
	}
	out := &seeded{keys: map[laki.Merchant]lakiconnect.KeySource{}, apiKeyIDs: map[string]string{}, merchantOf: map[string]string{}}
	// Merchants and their management keys, made up front (dashboard-made).
	type group struct {
		merchant string
		mgmt     secret.Value
		specs    []seedSpec
	}
	var groups []*group
	newGroup := func() (*group, error) {
		merchant, err := sim.AddMasterMerchant(ctx)
		if err != nil {
			return nil, err
		}
		g := &group{merchant: merchant}
		k, err := sim.CreateKey(ctx, env, g.merchant, "lakirotator management", laki.AllScopes)
		if err != nil {
			return nil, err
		}
		g.mgmt = k.Secret
		out.mgmt = append(out.mgmt, k)
		out.issued = append(out.issued, k.Secret)
		out.keys[laki.Merchant{Environment: env, MasterMerchantID: g.merchant}] = lakiconnect.StaticKey(k.Secret)
		groups = append(groups, g)
		return g, nil
	}
	var cur *group
	for i, s := range specs {
		per := webhooksPerMerchant
		if s.kind == inventory.KindAPIKey {
			per = apiKeysPerMerchant
		}
		if cur == nil || len(cur.specs) == per || (i > 0 && specs[i-1].kind != s.kind) {
			g, err := newGroup()
			if err != nil {
				return nil, fmt.Errorf("seed: %w", err)
			}
			cur = g
		}
		cur.specs = append(cur.specs, s)
		out.names = append(out.names, s.name)
	}

	var mu sync.Mutex
	var errs []error
	work := make(chan func() error)
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fn := range work {
				if err := fn(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, g := range groups {
		client := mgmtClient.WithAPIKey(g.mgmt)
		for _, s := range g.specs {
			work <- func() error {
				cred, tags, err := seedOne(ctx, sim, client, g.merchant, s)
				if err != nil {
					return fmt.Errorf("seed %s: %w", s.name, err)
				}
				v, err := cred.Encode()
				if err != nil {
					return fmt.Errorf("seed %s: %w", s.name, err)
				}
				var awsTags []types.Tag
				for k, v := range tags {
					awsTags = append(awsTags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
				}
				awsTags = append(awsTags, types.Tag{Key: aws.String(runTag), Value: aws.String(runID)})
				if _, err := smc.CreateSecret(ctx, &sm.CreateSecretInput{
					Name: aws.String(s.name), ClientRequestToken: aws.String(seedVersion(s.name)),
					SecretString: aws.String(v.Reveal()), Tags: awsTags,
				}); err != nil && secretsmanager.ErrorCode(err) != "ResourceExistsException" {
					// (The name is this run's own: existing, it is a retried
					// create that had landed.)
					return fmt.Errorf("seed %s in Secrets Manager: %w", s.name, err)
				}
				mu.Lock()
				out.issued = append(out.issued, cred.Secret)
				out.merchantOf[s.name] = g.merchant
				if s.kind == inventory.KindAPIKey {
					out.apiKeyIDs[s.name] = cred.KeyID
				}
				mu.Unlock()
				return nil
			}
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("seeding %d secrets: %d failed, first: %w", n, len(errs), errs[0])
	}
	return out, nil
}

// policyFor names the policy of a kind (a policy covers one kind);
// unscheduled ones have no slot in the run (the fleet run's owner's
// secrets and exposed key, rotated only by their emergencies).
func policyFor(k inventory.Kind, unscheduled bool) string {
	p := "bench-webhooks"
	if k == inventory.KindAPIKey {
		p = "bench-api-keys"
	}
	if unscheduled {
		p = "bench-unscheduled-" + strings.TrimPrefix(p, "bench-")
	}
	return p
}

// seedVersion is the AWSCURRENT version id of a seeded secret.
func seedVersion(name string) string { return rotator.VersionID(name, "lakibench-seed") }

func seedOne(ctx context.Context, sim simulator, client *lakiconnect.Client, merchant string, s seedSpec) (secretstore.Credential, map[string]string, error) {
	tags := map[string]string{
		inventory.TagManaged: "true", inventory.TagKind: string(s.kind), inventory.TagEnvironment: string(s.env),
		inventory.TagMasterMerchant: merchant, inventory.TagPolicy: s.policy,
	}
	if s.owner != "" {
		tags[inventory.TagOwners] = s.owner
	}
	if s.kind == inventory.KindWebhookSecret {
		ep, ws, err := sim.AddWebhookEndpoint(ctx, s.env, merchant, "https://hooks.example.test/"+s.name)
		if err != nil {
			return secretstore.Credential{}, nil, err
		}
		tags[inventory.TagEndpointID] = ep.ID
		return secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: string(s.env), MasterMerchantID: merchant,
			EndpointID: ep.ID, SecretID: ws.ID, Secret: ws.Secret, CreatedAt: ws.CreatedAt}, tags, nil
	}
	k, err := client.CreateAPIKey(ctx, rotator.IdempotencyKey(s.name, seedVersion(s.name), "seed"), laki.CreateAPIKeyRequest{
		Name:   "seed " + s.name[len(s.name)-8:],
		Scopes: benchScopes,
		Metadata: map[string]string{
			rotator.MetaCreatedBy: rotator.MetaCreatedByValue,
			rotator.MetaSecret:    s.name,
			rotator.MetaVersion:   seedVersion(s.name),
		},
	})
	if err != nil {
		return secretstore.Credential{}, nil, err
	}
	return secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(s.env), MasterMerchantID: merchant,
		KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}, tags, nil
}

// newIssuerSource is the engine's issuers on the engine's client, one
// management key per master merchant.
func newIssuerSource(c *lakiconnect.Client, keys map[laki.Merchant]lakiconnect.KeySource) (rotator.IssuerSource, error) {
	m, err := lakiconnect.NewMerchants(map[laki.Environment]*lakiconnect.Client{laki.Sandbox: c}, keys)
	if err != nil {
		return nil, err
	}
	return rotator.Issuers(m.Client, m.InvalidateManagementKey), nil
}
