package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/authwatch"
	"github.com/lakirotator/lakirotator/policies/scan"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// keyRef names a key in one environment and merchant.
type keyRef struct {
	env      laki.Environment
	merchant string
	keyID    string
}

// keyIndex is what the stores say of every managed secret's credentials:
// the scan's view of the managed secrets, and which key is current or
// retired for the 401/403 watch.
type keyIndex struct {
	managed []scan.Managed
	keys    map[keyRef]authwatch.KeyInfo
	scopes  map[string][]laki.Scope // secret name → scopes of its current key
	// unreadable: secrets whose current value is malformed, with the
	// reason (never the value); the other secrets are still scanned.
	unreadable map[string]error
}

// readKeyIndex reads the AWSCURRENT and AWSPREVIOUS values of every managed
// secret: two reads each, well inside the read quota.
func (d *Daemon) readKeyIndex(ctx context.Context) (keyIndex, error) {
	idx := keyIndex{keys: map[keyRef]authwatch.KeyInfo{}, scopes: map[string][]laki.Scope{}, unreadable: map[string]error{}}
	for _, e := range d.catalog.All() {
		if e.Missing {
			continue
		}
		env := d.envs[e.Managed.Environment]
		if env == nil {
			continue
		}
		pol, _ := d.policies.Get(e.Managed.Policy)
		m := scan.FromInventory(e.Managed)
		if cur, ok := e.Stored.VersionWithStage(secretstore.StageCurrent); ok {
			c, err := d.facts.of(ctx, env.Store, e.Managed.Name, cur.ID)
			switch {
			case err == nil:
				m = m.WithCurrent(c)
				idx.scopes[e.Managed.Name] = laki.ScopesFrom(c.Scopes)
				idx.keys[keyRef{e.Managed.Environment, e.Managed.MasterMerchantID, c.ID()}] = authwatch.KeyInfo{
					State: authwatch.Current, Secret: e.Managed.Name, Kind: e.Managed.Kind, Policy: pol}
			case errors.Is(err, secretstore.ErrNotFound):
			case errors.Is(err, secretstore.ErrMalformedValue):
				idx.unreadable[e.Managed.Name] = err
			default:
				return idx, fmt.Errorf("reading %s: %w", e.Managed.Name, err)
			}
		}
		if prev, ok := e.Stored.VersionWithStage(secretstore.StagePrevious); ok {
			if c, err := d.facts.of(ctx, env.Store, e.Managed.Name, prev.ID); err == nil {
				m.PreviousIDs = append(m.PreviousIDs, c.ID())
				idx.keys[keyRef{e.Managed.Environment, e.Managed.MasterMerchantID, c.ID()}] = authwatch.KeyInfo{
					State: authwatch.Retired, Secret: e.Managed.Name, Kind: e.Managed.Kind, Policy: pol}
			}
		}
		idx.managed = append(idx.managed, m)
	}
	d.facts.keepOnly(d.catalog.All())
	return idx, nil
}

// credentialFacts remembers what each stored version says, without its
// secret: a version never changes once written, so the scans, which run
// every few minutes over every managed secret, read each version once
// instead of on every pass.
type credentialFacts struct {
	mu sync.Mutex
	m  map[string]secretstore.Credential // secret name + version id → facts (Secret zero)
}

func factsKey(name, versionID string) string { return name + "\x00" + versionID }

func (f *credentialFacts) of(ctx context.Context, store secretstore.Store, name, versionID string) (secretstore.Credential, error) {
	key := factsKey(name, versionID)
	f.mu.Lock()
	c, ok := f.m[key]
	f.mu.Unlock()
	if ok {
		return c, nil
	}
	v, err := store.Get(ctx, name, secretstore.ByID(versionID))
	if err != nil {
		return secretstore.Credential{}, err
	}
	c, err = secretstore.DecodeCredential(name, v.Value)
	if err != nil {
		return secretstore.Credential{}, err
	}
	c.Secret = secret.Value{}
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]secretstore.Credential{}
	}
	f.m[key] = c
	f.mu.Unlock()
	return c, nil
}

// keepOnly forgets the versions the catalog no longer names.
func (f *credentialFacts) keepOnly(entries []inventory.Entry) {
	live := map[string]bool{}
	for _, e := range entries {
		for _, v := range e.Stored.Versions {
			live[factsKey(e.Managed.Name, v.ID)] = true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.m {
		if !live[k] {
			delete(f.m, k)
		}
	}
}

// Scans holds the policy scan and the 401/403 watch of a service.
type Scans struct {
	d        *Daemon
	scanner  *scan.Scanner
	watcher  *authwatch.Watcher
	monitor  *scan.Monitor
	mu       sync.Mutex
	lastKeys map[keyRef]authwatch.KeyInfo
	own      []scan.Managed // the rotator's own credentials without a policy (own.go)
	ownFacts credentialFacts
}

func newScans(d *Daemon, pols *policies.Set, merchants *lakiconnect.Merchants, metrics *scan.Metrics, unattributed policies.Alerts) *Scans {
	s := &Scans{d: d, lastKeys: map[keyRef]authwatch.KeyInfo{}}
	var scanMerchants []scan.Merchant
	var watchMerchants []authwatch.Merchant
	for m, c := range merchants.All() {
		scanMerchants = append(scanMerchants, scan.Merchant{Merchant: m, Client: c})
		watchMerchants = append(watchMerchants, authwatch.Merchant{Merchant: m, Failures: c})
	}
	s.scanner = &scan.Scanner{Policies: pols, Merchants: scanMerchants}
	s.monitor = &scan.Monitor{Scanner: s.scanner, Clock: d.clock, Sink: d.bus, Metrics: metrics, Logger: d.log,
		Inventory: func(ctx context.Context) ([]scan.Managed, error) {
			idx, err := d.readKeyIndex(ctx)
			if err != nil {
				return nil, err
			}
			if err := s.addOwn(ctx, &idx); err != nil {
				return nil, err
			}
			if err := idx.unreadableErr(); err != nil {
				d.log.Warn("policy scan: some stored values cannot be read; the other secrets are scanned", "err", err)
			}
			s.remember(idx)
			return idx.managed, nil
		}}
	s.watcher = &authwatch.Watcher{
		Merchants: watchMerchants, Policies: pols, Clock: d.clock, Sink: d.bus, Logger: d.log,
		Unmanaged: unattributed, Unattributed: unattributed,
		Keys: authwatch.KeysFunc(func(env laki.Environment, merchant, keyID string) (authwatch.KeyInfo, bool) {
			s.mu.Lock()
			defer s.mu.Unlock()
			k, ok := s.lastKeys[keyRef{env, merchant, keyID}]
			return k, ok
		}),
		Rotate: func(ctx context.Context, r authwatch.RotateRequest) error {
			_, err := d.Trigger(ctx, trigger.Request{
				Secret: r.Secret, Cause: r.Cause, Actor: "authwatch", Source: events.SourcePolicyScan,
				Reason: fmt.Sprintf("%s: %d refused requests in %s on key %s", r.Reason, r.Count, r.Window, r.KeyID),
			})
			return err
		},
	}
	return s
}

func (s *Scans) remember(idx keyIndex) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastKeys = idx.keys
}

// Check runs one policy scan now and returns every violation (policy
// check). Secrets whose stored value cannot be read come back as an error
// next to the violations of the others.
func (s *Scans) Check(ctx context.Context) ([]policies.Violation, error) {
	vs, idx, err := s.check(ctx)
	if err == nil && idx != nil {
		err = idx.unreadableErr()
	}
	return vs, err
}

func (k *keyIndex) unreadableErr() error {
	names := make([]string, 0, len(k.unreadable))
	for n := range k.unreadable {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		errs = append(errs, k.unreadable[n])
	}
	return errors.Join(errs...)
}

// check refreshes the catalog, reads every managed secret's credentials
// once and scans them. The index comes back even when only the scan (the
// LakiConnect side) failed, so that Plan can still show the store's view.
func (s *Scans) check(ctx context.Context) ([]policies.Violation, *keyIndex, error) {
	if err := s.d.catalog.Refresh(ctx, s.d.clock.Now()); err != nil {
		return nil, nil, err
	}
	idx, err := s.d.readKeyIndex(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := s.addOwn(ctx, &idx); err != nil {
		return nil, nil, err
	}
	s.remember(idx)
	vs, err := s.scanner.Scan(ctx, idx.managed, s.d.clock.Now())
	if err != nil {
		return nil, &idx, err
	}
	scan.Sort(vs)
	return vs, &idx, nil
}

// Sweep runs the orphan sweep over every environment's managed secrets.
func (d *Daemon) Sweep(ctx context.Context) (map[laki.Environment]rotator.SweepResult, error) {
	out := map[laki.Environment]rotator.SweepResult{}
	var errs []error
	for name, env := range d.envs {
		var secrets []inventory.ManagedSecret
		for _, e := range d.catalog.All() {
			if !e.Missing && e.Managed.Environment == name {
				secrets = append(secrets, e.Managed)
			}
		}
		if len(secrets) == 0 {
			continue
		}
		res, err := env.Engine.Sweep(ctx, secrets)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep of %s: %w", name, err))
		}
		out[name] = res
	}
	return out, errors.Join(errs...)
}
