// The retire pass: old credentials in their grace, each end reported once.

package daemon

import (
	"context"
	"time"

	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// RetirePass checks every old credential that may still be in its grace.
func (d *Daemon) RetirePass(ctx context.Context) {
	now := d.clock.Now()
	for _, e := range d.catalog.All() {
		if e.Missing {
			continue
		}
		if _, ok := e.Stored.VersionWithStage(secretstore.StagePrevious); !ok {
			continue
		}
		// Old credentials end at most 7 days after promotion; past that and
		// a day's margin they were confirmed ended by an earlier pass.
		if since, ok := e.CurrentSince(); ok && now.Sub(since) > laki.MaxExpireDelay+24*time.Hour {
			continue
		}
		p, ok := d.policies.Get(e.Managed.Policy)
		if !ok {
			continue
		}
		env := d.envs[e.Managed.Environment]
		if env == nil {
			continue
		}
		if _, open := openIntent(e, now); open {
			continue // its trigger ends the old credential, with its own grace
		}
		prev, _ := e.Stored.VersionWithStage(secretstore.StagePrevious)
		if d.retiredBefore(e.Managed.Name, prev.ID) {
			continue // its end was confirmed already: say it once
		}
		known := e.Stored
		res, err := env.Engine.Retire(ctx, e.Managed, RotationPolicy(p), &known)
		if err != nil {
			d.log.Error("retire check failed", "secret", e.Managed.Name, "err", err)
			continue
		}
		d.oldCreds.record(e.Managed.Name, prev.ID, res, httpapi.OldCredential{CheckedAt: now.UTC()})
		if res.State == rotator.RetireEnded || res.State == rotator.RetireNone {
			d.markRetired(e.Managed.Name, prev.ID)
		}
		if res.State != rotator.RetireNone && res.State != rotator.RetireInGrace {
			d.log.Info("old credential retired", "secret", e.Managed.Name, "key_id", res.KeyID, "state", res.State)
		}
	}
}

func (d *Daemon) retiredBefore(secretName, versionID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.retired[secretName+"\x00"+versionID]
}

func (d *Daemon) markRetired(secretName, versionID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retired[secretName+"\x00"+versionID] = true
}
