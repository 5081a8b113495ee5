// The benchmark's settings and its report.

package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// AWS's Secrets Manager write quota and what it allows.
const (
	AWSWriteQuota        = 50.0 // writes per second per account and region
	WritesPerRotation    = 2    // PutSecretValue + UpdateSecretVersionStage
	RotationCeiling      = AWSWriteQuota / WritesPerRotation
	AWSTemplateCallsPerR = 10 // Secrets Manager calls per rotation of AWS's rotation template
)

// Quota modes of the store's client-side limiter.
const (
	QuotaAWS = "aws" // writes just under AWS's 50/s, reads at AWS's 10,000/s
	QuotaOff = "off" // no client-side limit: how fast the stack goes
)

// clientWriteShare keeps the store's writes just under the quota, so that
// network jitter never makes two seconds' bursts meet in one second at AWS.
const clientWriteShare = 0.96

// Config is one benchmark run.
type Config struct {
	// N is how many managed secrets to seed and rotate.
	N int
	// OwnerSecrets is how many of them belong to one owner, rotated as a
	// personnel emergency while the scheduled batch runs (at most N/2).
	OwnerSecrets int
	// Quota is QuotaAWS or QuotaOff.
	Quota string
	// StandIn puts the awsfault quota stand-in in front of the endpoint:
	// ThrottlingException above AWS's write quota, as AWS answers.
	StandIn bool
	// WriteQuota is the account's Secrets Manager write quota per second
	// (default AWSWriteQuota, 50): the stand-in throttles above it and the
	// quota bound is half of it.
	WriteQuota float64
	// Workers is the engine's pool size (default 32).
	Workers int
	// Endpoint is the Secrets Manager endpoint (moto) to use.
	Endpoint string
	// ServeBinary, when set, is a lakirotator binary: after the rotations,
	// `serve` is run on the seeded secrets and its idle memory read.
	ServeBinary string
	// SimulatorExecutable, when set, is a lakibench binary run as a child
	// process (SimulatorChildFlag) to host the simulator, so that the peak
	// memory figure is the rotator's alone; empty runs it in this process.
	SimulatorExecutable string
	// Replicas, when at least 1, makes the run a fleet run (RunFleet):
	// that many real `lakirotator serve` processes (ServeBinary) share a
	// DynamoDB lease in moto and rotate a scheduled slot.
	Replicas int
	// Accounts is how many AWS accounts the fleet run's secrets live in (1
	// or 2: one per LakiConnect environment), reached through AssumeRole.
	Accounts int
	// KillLeaderAt, when above 0, SIGKILLs the lease holder once this
	// fraction of the fleet run's batch is done.
	KillLeaderAt float64
	// PersonnelTo is where the fleet run sends the owner's departure:
	// PersonnelToHolder (default) or PersonnelToOther.
	PersonnelTo string
	// LeaseTTL is the fleet run's lease duration (default ha.DefaultTTL,
	// 15 s, the daemon's default); tests shorten it.
	LeaseTTL time.Duration
	// KeepLogs keeps the fleet run's replica directories (configs, logs).
	KeepLogs bool
	// Progress, when set, gets a line now and then (to stderr).
	Progress func(format string, args ...any)

	// seeded, when set, receives every secret value seeding made (tests
	// scan the output for them).
	seeded func(secret.Value)
}

// Report is what a run measured. It holds counts and durations, never a secret.
type Report struct {
	Date        time.Time `json:"date"`
	N           int       `json:"n"`
	Batch       int       `json:"scheduled_batch"`
	OwnerJobs   int       `json:"owner_secrets"`
	APIKeys     int       `json:"api_key_secrets"`
	Webhooks    int       `json:"webhook_secrets"`
	Merchants   int       `json:"master_merchants"`
	Quota       string    `json:"quota"`
	WriteQuota  float64   `json:"write_quota_per_second"`
	StandIn     bool      `json:"stand_in"`
	Workers     int       `json:"workers"`
	CPUs        int       `json:"cpus"`
	SeedSeconds float64   `json:"seed_seconds"`

	DiscoverySeconds float64 `json:"discovery_seconds"`
	DiscoveryPages   int     `json:"discovery_list_pages"`
	Discovered       int     `json:"discovered"`

	Rotated           int                `json:"rotated"`
	Failed            int                `json:"failed"`
	FirstFailure      string             `json:"first_failure,omitempty"`
	RotationsOnce     bool               `json:"every_secret_rotated_once"`
	WallSeconds       float64            `json:"wall_seconds"`
	RotationsPerSec   float64            `json:"rotations_per_second"`
	QuotaBoundPerSec  float64            `json:"quota_bound_per_second"`
	FractionOfBound   float64            `json:"fraction_of_bound"`
	WritesPerSecPeak  float64            `json:"writes_per_second_peak"`
	SMCalls           map[string]int     `json:"secretsmanager_calls"` // by operation
	SMCallsPerRot     float64            `json:"secretsmanager_calls_per_rotation"`
	SMWritesPerRot    float64            `json:"secretsmanager_writes_per_rotation"`
	SMMeanMillis      map[string]float64 `json:"secretsmanager_mean_ms"` // by operation
	ThrottlesSurfaced int                `json:"throttles_surfaced"`     // calls that failed with a throttling error after the SDK's retries
	ThrottlesInjected int                `json:"throttles_injected"`     // attempts the stand-in refused (absorbed by retries)
	LakiCalls         map[string]int     `json:"lakiconnect_calls"`      // by route
	LakiCallsPerRot   float64            `json:"lakiconnect_calls_per_rotation"`
	Laki429           int                `json:"lakiconnect_429s"`

	LatencyP50Millis float64 `json:"rotation_p50_ms"`
	LatencyP99Millis float64 `json:"rotation_p99_ms"`

	ExposedToRevokedMillis float64 `json:"exposed_to_revoked_ms"`
	ExposedAtDone          int     `json:"exposed_when_batch_done"`
	OwnerSeconds           float64 `json:"owner_rotation_seconds"`
	OwnerStartedAtDone     int     `json:"owner_started_when_batch_done"`

	PeakRSSMB          float64 `json:"peak_rss_mb"`
	SimulatorInProcess bool    `json:"simulator_in_process"`
	SimulatorPeakRSSMB float64 `json:"simulator_peak_rss_mb,omitempty"`
	HeapMB             float64 `json:"heap_in_use_mb_at_end"`

	IdleServe *IdleServe `json:"idle_serve,omitempty"`
}

// IdleServe is the memory of `lakirotator serve` holding the secrets.
type IdleServe struct {
	Secrets int     `json:"secrets"`
	RSSMB   float64 `json:"rss_mb"`
	PeakMB  float64 `json:"peak_rss_mb"`
	Settled float64 `json:"settled_after_seconds"`
	Note    string  `json:"note,omitempty"`
}

func (c *Config) defaults() error {
	if c.N < 4 {
		return fmt.Errorf("bench: n is %d; it must be at least 4", c.N)
	}
	if c.WriteQuota <= 0 {
		c.WriteQuota = AWSWriteQuota
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.Quota == "" {
		c.Quota = QuotaAWS
	}
	if c.Quota != QuotaAWS && c.Quota != QuotaOff {
		return fmt.Errorf("bench: quota %q is not %q or %q", c.Quota, QuotaAWS, QuotaOff)
	}
	c.OwnerSecrets = min(max(c.OwnerSecrets, 0), c.N/2)
	if c.Endpoint == "" {
		return errors.New("bench: no Secrets Manager endpoint")
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
	return nil
}
