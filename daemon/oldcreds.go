package daemon

import (
	"sync"

	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/rotator"
)

// oldCredentials keeps what the last retire pass found of each secret's
// previous credential in its grace, for status and the inventory API. It is
// a view of LakiConnect's facts, rebuilt by the next pass after a restart:
// nothing resumes from it.
type oldCredentials struct {
	mu sync.Mutex
	m  map[string]httpapi.OldCredential // by secret name
}

func (o *oldCredentials) record(name, version string, res rotator.RetireResult, at httpapi.OldCredential) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if res.State != rotator.RetireInGrace && res.State != rotator.RetireScheduled {
		delete(o.m, name)
		return
	}
	if o.m == nil {
		o.m = map[string]httpapi.OldCredential{}
	}
	at.VersionID, at.ID, at.EndsAt, at.LastUsedAt, at.StillInUse = version, res.KeyID, res.EndsAt, res.LastUsedAt, res.StillInUse
	o.m[name] = at
}

// of returns the old credential of a secret if it is still the version
// AWSPREVIOUS holds.
func (o *oldCredentials) of(name, previousVersion string) (*httpapi.OldCredential, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.m[name]
	if !ok || previousVersion == "" || c.VersionID != previousVersion {
		return nil, false
	}
	return &c, true
}
