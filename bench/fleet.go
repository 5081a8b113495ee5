// The fleet run: N secrets over K AWS accounts (reached through AssumeRole;
// moto maps the assumed role's credentials to the role's account), rotated
// by R real `lakirotator serve` replicas that share a DynamoDB lease in
// moto, optionally killing the lease holder part-way. Every Secrets Manager
// call of every replica goes through the counting proxy (proxy.go), which is
// how calls per rotation, lost and duplicated rotations and the failover
// gap are measured.

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/lakirotator/lakirotator/ha"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// fleetEnvs are the LakiConnect environments, one per account: the config
// has one aws entry per environment, so one daemon reaches at most two.
var fleetEnvs = []laki.Environment{laki.Sandbox, laki.Production}

// fleetAccountIDs are the accounts the run assumes roles in.
var fleetAccountIDs = []string{"111111111111", "222222222222"}

// RunFleet seeds, starts the replicas and measures one slot's batch with an
// exposed key and an owner's departure while it runs.
func RunFleet(ctx context.Context, cfg Config) (*FleetReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := cfg.fleetDefaults(); err != nil {
		return nil, err
	}
	rep := &FleetReport{Date: time.Now().UTC(), N: cfg.N, Accounts: cfg.Accounts, Replicas: cfg.Replicas, KillLeaderAt: cfg.KillLeaderAt,
		Workers: cfg.Workers, WriteQuota: cfg.WriteQuota, StandIn: cfg.StandIn, CPUs: runtime.NumCPU(), LoadAtStart: loadAverage(),
		BoundPerSec: float64(cfg.Accounts) * cfg.WriteQuota / WritesPerRotation, PersonnelTo: cfg.PersonnelTo, LeaseTTL: cfg.LeaseTTL.Seconds()}
	runID := newRunID()
	sp, err := startSeparateProcess(cfg.SimulatorExecutable)
	if err != nil {
		return nil, err
	}
	defer sp.Close()

	// Seed each account: the owner's secrets and the exposed key in the
	// first, the rest spread evenly.
	t0 := time.Now()
	staticCreds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	stsClient := sts.New(sts.Options{Region: motoserver.Region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: staticCreds})
	managedPrefix := "bench/" + runID + "/managed/"
	var accounts []*fleetAccount
	var all, batch, owned []string
	var exposed string
	seeds := map[string]*seeded{}
	clients := map[string]*sm.Client{}
	for a := range cfg.Accounts {
		env := fleetEnvs[a]
		acc := &fleetAccount{env: string(env), id: fleetAccountIDs[a], role: "arn:aws:iam::" + fleetAccountIDs[a] + ":role/lakibench", mgmt: map[string]string{}}
		accounts = append(accounts, acc)
		smc := sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(cfg.Endpoint), RetryMaxAttempts: 10,
			Credentials: aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, acc.role))})
		clients[acc.env] = smc
		n := cfg.N / cfg.Accounts
		owners := 0
		if a == 0 {
			n += cfg.N % cfg.Accounts
			owners = min(cfg.OwnerSecrets, n/2)
		}
		boot, err := bootstrapClient(ctx, sp, env)
		if err != nil {
			return nil, err
		}
		cfg.Progress("seeding %d secrets in account %s (%s)", n, acc.id, env)
		sd, err := seed(ctx, sp, boot, smc, runID, seedPlan{env: env, prefix: managedPrefix + string(env) + "/", n: n, owners: owners, unscheduled: a == 0})
		if err != nil {
			return nil, err
		}
		seeds[acc.env] = sd
		if cfg.seeded != nil {
			for _, v := range sd.issued {
				cfg.seeded(v)
			}
		}
		for i, name := range sd.names {
			all = append(all, name)
			switch {
			case a == 0 && i == 0:
				exposed = name
			case a == 0 && i >= n-owners:
				owned = append(owned, name)
			default:
				batch = append(batch, name)
			}
		}
		if err := storeManagementKeys(ctx, smc, runID, acc, sd); err != nil {
			return nil, err
		}
		rep.Merchants += len(sd.mgmt)
	}
	rep.SeedSeconds = time.Since(t0).Seconds()
	rep.Batch, rep.OwnerJobs = len(batch), len(owned)

	// The lease table, the proxy, the slot and the replicas.
	ddb := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: staticCreds})
	table := "lakibench-lease-" + runID
	if err := ha.CreateTable(ctx, ddb, table); err != nil {
		return nil, err
	}
	classOf := map[string]string{exposed: classExposed}
	for _, n := range batch {
		classOf[n] = classBatch
	}
	for _, n := range owned {
		classOf[n] = classOwner
	}
	proxy, err := newSMProxy(cfg.Endpoint, classOf, cfg.Accounts, cfg.WriteQuota, cfg.StandIn)
	if err != nil {
		return nil, err
	}
	defer proxy.close()
	dir, err := os.MkdirTemp("", "lakibench-fleet-")
	if err != nil {
		return nil, err
	}
	keep := cfg.KeepLogs // a failed run keeps the replicas' logs too
	defer func() {
		if keep {
			cfg.Progress("the replicas' configs and logs are kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	token := secret.New("lakibench-" + newRunID() + newRunID())
	// The slot is the next whole minute: every secret was seeded before it,
	// so a replica that takes the lease after it finds it missed and runs it
	// at once, and one that holds it then fires it (the same cause either way).
	slot := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	setup := &fleetSetup{binary: cfg.ServeBinary, runID: runID, moto: cfg.Endpoint, lakiURL: sp.BaseURL(), table: table, slot: slot,
		accounts: accounts, proxy: proxy, token: token, workers: cfg.Workers, write: clientWriteShare * cfg.WriteQuota, ttl: cfg.LeaseTTL, logLevel: "info"}
	rep.Slot = slot
	cfg.Progress("starting %d replicas (slot at %s)", cfg.Replicas, slot.Format("15:04:05"))
	t0 = time.Now()
	var replicas []*replica
	defer func() {
		for _, r := range replicas {
			r.stop()
		}
	}()
	for no := 1; no <= cfg.Replicas; no++ {
		r, err := setup.startReplica(dir, no)
		if err != nil {
			return nil, err
		}
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		if err := r.waitReady(ctx, 10*time.Minute); err != nil {
			return nil, err
		}
	}
	rep.ReadySeconds = time.Since(t0).Seconds()
	cfg.Progress("%d replicas ready in %.1fs", len(replicas), rep.ReadySeconds)

	w := &fleetWatch{cfg: cfg, rep: rep, proxy: proxy, replicas: replicas, ddb: ddb, table: table, sim: sp, token: token,
		all: all, batch: batch, owned: owned, exposed: exposed, exposedKey: seeds[accounts[0].env].apiKeyIDs[exposed],
		exposedMerchant: seeds[accounts[0].env].merchantOf[exposed], simPID: strconv.Itoa(sp.PID()), motoPID: motoPID(cfg.Endpoint)}
	if err := w.run(ctx); err != nil {
		keep = true
		return nil, fmt.Errorf("%w (not rotated: %s)", err, w.missing(5))
	}
	w.idleMemory(ctx)
	lost, err := countLost(ctx, clients, all)
	if err != nil {
		return nil, err
	}
	rep.LostByStore = lost
	if lost > 0 || rep.Note != "" {
		keep = true
		rep.Note = strings.TrimSpace(rep.Note + " not rotated: " + w.missing(5))
	}
	rep.fillFleetFigures(proxy, replicas, all, owned, w)
	rep.LoadAtEnd = loadAverage()
	return rep, nil
}

func (c *Config) fleetDefaults() error {
	if c.Accounts < 1 || c.Accounts > len(fleetEnvs) {
		return fmt.Errorf("bench: -accounts %d: the daemon has one AWS account per LakiConnect environment (sandbox, production), so 1 or 2", c.Accounts)
	}
	if c.KillLeaderAt < 0 || c.KillLeaderAt >= 1 {
		return fmt.Errorf("bench: -kill-leader-at %g: a fraction of the batch, at least 0 and below 1", c.KillLeaderAt)
	}
	if c.KillLeaderAt > 0 && c.Replicas < 2 {
		return errors.New("bench: -kill-leader-at needs -replicas 2 or more (someone must take over)")
	}
	if c.ServeBinary == "" {
		return errors.New("bench: -replicas needs the lakirotator binary (-serve-binary)")
	}
	if c.SimulatorExecutable == "" {
		return errors.New("bench: -replicas needs the simulator in a process of its own")
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = ha.DefaultTTL
	}
	if c.PersonnelTo == "" {
		c.PersonnelTo = PersonnelToHolder
	}
	if c.PersonnelTo != PersonnelToHolder && c.PersonnelTo != PersonnelToOther {
		return fmt.Errorf("bench: -personnel-to %q is not %q or %q", c.PersonnelTo, PersonnelToHolder, PersonnelToOther)
	}
	return nil
}

// bootstrapClient is a Management API client of env for seeding; every
// call goes with a merchant's own key (WithAPIKey), so the bootstrap
// merchant holds no secrets.
func bootstrapClient(ctx context.Context, sim simulator, env laki.Environment) (*lakiconnect.Client, error) {
	m, err := sim.AddMasterMerchant(ctx)
	if err != nil {
		return nil, err
	}
	k, err := sim.CreateKey(ctx, env, m, "bench bootstrap", laki.AllScopes)
	if err != nil {
		return nil, err
	}
	return lakiconnect.NewClient(lakiconnect.Config{BaseURL: sim.BaseURL() + "/" + string(env) + "/v1", APIKey: k.Secret, MaxRetries: 4})
}

// storeManagementKeys stores each merchant's management key in the
// account, as serve reads them from the store.
func storeManagementKeys(ctx context.Context, smc *sm.Client, runID string, acc *fleetAccount, sd *seeded) error {
	for _, k := range sd.mgmt {
		name := fmt.Sprintf("bench/%s/management/%s/%s", runID, acc.env, k.MasterMerchantID)
		v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: acc.env, MasterMerchantID: k.MasterMerchantID,
			KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}.Encode()
		if err != nil {
			return err
		}
		if _, err := smc.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}); err != nil {
			return fmt.Errorf("storing the management key of %s: %w", k.MasterMerchantID, err)
		}
		acc.merchants = append(acc.merchants, k.MasterMerchantID)
		acc.mgmt[k.MasterMerchantID] = name
	}
	return nil
}

// countLost reads every account's listing (straight from moto, not through
// the proxy) and counts the secrets whose AWSCURRENT is still the seeded
// version: rotations lost.
func countLost(ctx context.Context, clients map[string]*sm.Client, names []string) (int, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	seen := 0
	lost := 0
	for _, smc := range clients {
		p := sm.NewListSecretsPaginator(smc, &sm.ListSecretsInput{MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return 0, fmt.Errorf("bench: listing the secrets after the run: %w", err)
			}
			for _, s := range page.SecretList {
				name := aws.ToString(s.Name)
				if !want[name] {
					continue
				}
				seen++
				for v, stages := range s.SecretVersionsToStages {
					for _, st := range stages {
						if st == secretstore.StageCurrent && v == seedVersion(name) {
							lost++
						}
					}
				}
			}
		}
	}
	if seen != len(names) {
		return lost + len(names) - seen, fmt.Errorf("bench: %d of %d secrets are missing from the listing after the run", len(names)-seen, len(names))
	}
	return lost, nil
}
