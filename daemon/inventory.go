// The inventory the API and status show: ids, ages, stages, next rotation.

package daemon

import (
	"context"
	"strconv"

	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// Inventory implements httpapi.Controller: ids, ages, stages, next rotation; never values.
func (d *Daemon) Inventory(context.Context) (httpapi.Inventory, error) {
	now := d.clock.Now()
	inv := httpapi.Inventory{Secrets: []httpapi.SecretStatus{}}
	for _, e := range d.catalog.All() {
		st := httpapi.SecretStatus{
			Name: e.Managed.Name, Kind: string(e.Managed.Kind), Environment: string(e.Managed.Environment),
			MasterMerchantID: e.Managed.MasterMerchantID, Policy: e.Managed.Policy, Owners: e.Managed.Owners,
		}
		cur, hasCur := e.Stored.VersionWithStage(secretstore.StageCurrent)
		if hasCur {
			st.CurrentVersionID = cur.ID
			if since, ok := e.CurrentSince(); ok {
				st.CurrentSince = &since
				st.AgeSeconds = int64(now.Sub(since).Seconds())
			}
		}
		if pend, ok := e.Stored.VersionWithStage(secretstore.StagePending); ok && (!hasCur || pend.ID != cur.ID) {
			st.PendingVersionID = pend.ID
		}
		if prev, ok := e.Stored.VersionWithStage(secretstore.StagePrevious); ok {
			st.PreviousVersionID = prev.ID
			st.OldCredential, _ = d.oldCreds.of(e.Managed.Name, prev.ID)
		}
		if next, ok := d.nextRotation(e.Managed.Policy, now); ok {
			st.NextRotation = &next
		}
		if n, err := strconv.Atoi(e.Stored.Tags[rotator.TagFailedAttempts]); err == nil {
			st.Failures = n
			st.LastFailure = e.Stored.Tags[rotator.TagLastFailure]
		}
		inv.Secrets = append(inv.Secrets, st)
	}
	return inv, nil
}
