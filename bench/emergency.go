// The emergencies the benchmark raises while a batch runs, and the order
// it submits jobs in.

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
)

// spreadByMerchant orders jobs round-robin over master merchants. The
// engine's pool runs jobs of one priority first in, first out, and each
// management key has its own LakiConnect rate limit (80/s): jobs in name
// order come in runs of one merchant, which put every worker behind one key's
// limiter (16 rotations/s at 5 calls each) while the others idle.
func spreadByMerchant(jobs []rotator.Job) []rotator.Job {
	var order []string
	byMerchant := map[string][]rotator.Job{}
	for _, j := range jobs {
		m := string(j.Secret.Environment) + "/" + j.Secret.MasterMerchantID
		if _, ok := byMerchant[m]; !ok {
			order = append(order, m)
		}
		byMerchant[m] = append(byMerchant[m], j)
	}
	out := make([]rotator.Job, 0, len(jobs))
	for i := 0; len(out) < len(jobs); i++ {
		for _, m := range order {
			if i < len(byMerchant[m]) {
				out = append(out, byMerchant[m][i])
			}
		}
	}
	return out
}

func entryOf(entries []inventory.Entry, name string) inventory.Entry {
	for _, e := range entries {
		if e.Managed.Name == name {
			return e
		}
	}
	return inventory.Entry{}
}

// exposeAndWait raises api_key.exposed for the key the secret holds, hands the
// engine the compromise (what the security-event receiver does with the
// event) and returns the time from the event to the key's revocation at
// LakiConnect.
func exposeAndWait(ctx context.Context, sim simulator, eng *rotator.Engine, e inventory.Entry, pol rotator.RotationPolicy, keyID string) (time.Duration, error) {
	merchant := e.Managed.MasterMerchantID
	if st, err := sim.KeyStatus(ctx, merchant, keyID); err != nil || st != laki.StatusActive {
		return 0, fmt.Errorf("bench: key %s of %s before its exposure: status %q, %v", keyID, e.Managed.Name, st, err)
	}
	start := time.Now()
	evID, err := sim.ExposeKey(ctx, keyID)
	if err != nil {
		return 0, err
	}
	stored := e.Stored
	done := eng.Submit(ctx, rotator.Job{Secret: e.Managed, Policy: pol, Known: &stored, Trigger: rotator.Trigger{
		Kind: events.CauseCompromise, ID: evID, Source: events.SourceLakiEvent, Actor: "lakiconnect", Reason: "api_key.exposed", RevokeFirst: true}})
	tick := time.NewTicker(20 * time.Millisecond) // 50 looks a second: within the observer key's 100/s
	defer tick.Stop()
	var revokedAfter time.Duration
	for revokedAfter == 0 {
		select {
		case o := <-done:
			if o.Err != nil {
				return 0, fmt.Errorf("bench: compromise rotation of %s: %w", e.Managed.Name, o.Err)
			}
			done = nil
		case <-tick.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if st, err := sim.KeyStatus(ctx, merchant, keyID); err == nil && st == laki.StatusRevoked {
			revokedAfter = time.Since(start)
		}
		if done == nil && revokedAfter == 0 {
			return 0, fmt.Errorf("bench: compromise rotation of %s ended but key %s is not revoked", e.Managed.Name, keyID)
		}
	}
	if done != nil {
		if o := <-done; o.Err != nil {
			return 0, fmt.Errorf("bench: compromise rotation of %s: %w", e.Managed.Name, o.Err)
		}
	}
	return revokedAfter, nil
}
