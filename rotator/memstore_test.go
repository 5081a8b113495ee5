package rotator_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// memStore is an in-memory secretstore.Store with AWS Secrets Manager's
// stage semantics (including AWS's ResourceExists on a reused token with
// another value, which moto does not give), call accounting, and fault
// injection.
type memStore struct {
	mu      sync.Mutex
	clk     clock.Clock
	secrets map[string]*memSecret
	calls   map[string]int
	// fail, when set, may fail a call before it happens.
	fail func(op, name string) error
}

type memSecret struct {
	arn      string
	tags     map[string]string
	versions []*memVersion
}

type memVersion struct {
	id      string
	stages  []string
	value   secret.Value
	created time.Time
}

func newMemStore(clk clock.Clock) *memStore {
	return &memStore{clk: clk, secrets: map[string]*memSecret{}, calls: map[string]int{}}
}

// seed creates a secret whose AWSCURRENT holds value.
func (m *memStore) seed(name, versionID string, value secret.Value, tags map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := map[string]string{}
	for k, v := range tags {
		t[k] = v
	}
	m.secrets[name] = &memSecret{
		arn:      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + name + "-AbCdEf",
		tags:     t,
		versions: []*memVersion{{id: versionID, stages: []string{secretstore.StageCurrent}, value: value, created: m.clk.Now()}},
	}
}

func (m *memStore) begin(op, name string) (*memSecret, error) {
	m.calls[op]++
	if m.fail != nil {
		if err := m.fail(op, name); err != nil {
			return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrThrottled, Err: err}
		}
	}
	s, ok := m.secrets[name]
	if !ok && op != "List" {
		return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrNotFound}
	}
	return s, nil
}

func (m *memStore) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, v := range m.calls {
		out[k] = v
	}
	return out
}

func (m *memStore) resetCounts() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = map[string]int{}
}

func (m *memStore) Get(_ context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.begin("Get", name)
	if err != nil {
		return secretstore.Version{}, err
	}
	for _, v := range s.versions {
		if (sel.VersionID != "" && v.id == sel.VersionID) || (sel.VersionID == "" && slices.Contains(v.stages, sel.Stage)) {
			return secretstore.Version{SecretName: name, ARN: s.arn, ID: v.id, Stages: slices.Clone(v.stages), Value: v.value, CreatedAt: v.created}, nil
		}
	}
	return secretstore.Version{}, &secretstore.Error{Op: "Get", Secret: name, Kind: secretstore.ErrNotFound, Err: fmt.Errorf("no version %+v", sel)}
}

func (m *memStore) describeLocked(name string, s *memSecret) secretstore.Secret {
	out := secretstore.Secret{Name: name, ARN: s.arn, Tags: map[string]string{}}
	for k, v := range s.tags {
		out.Tags[k] = v
	}
	for _, v := range s.versions {
		out.Versions = append(out.Versions, secretstore.VersionInfo{ID: v.id, Stages: slices.Clone(v.stages), CreatedAt: v.created})
	}
	return out
}

func (m *memStore) Describe(_ context.Context, name string) (secretstore.Secret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.begin("Describe", name)
	if err != nil {
		return secretstore.Secret{}, err
	}
	return m.describeLocked(name, s), nil
}

func (m *memStore) PutPending(_ context.Context, name, versionID string, value secret.Value) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.begin("PutPending", name)
	if err != nil {
		return err
	}
	for _, v := range s.versions {
		if v.id == versionID {
			if !v.value.Equal(value) {
				return &secretstore.Error{Op: "PutPending", Secret: name, Kind: secretstore.ErrTokenReused}
			}
			return nil
		}
	}
	for _, v := range s.versions {
		v.stages = slices.DeleteFunc(v.stages, func(st string) bool { return st == secretstore.StagePending })
	}
	s.versions = append(s.versions, &memVersion{id: versionID, stages: []string{secretstore.StagePending}, value: value, created: m.clk.Now()})
	return nil
}

func (m *memStore) MoveStage(_ context.Context, name, stage, to, from string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.begin("MoveStage", name)
	if err != nil {
		return err
	}
	var target, holder *memVersion
	for _, v := range s.versions {
		if v.id == to {
			target = v
		}
		if slices.Contains(v.stages, stage) {
			holder = v
		}
	}
	bad := func(msg string) error {
		return &secretstore.Error{Op: "MoveStage", Secret: name, Kind: secretstore.ErrInvalidRequest, Err: fmt.Errorf("%s", msg)}
	}
	if target == nil {
		return &secretstore.Error{Op: "MoveStage", Secret: name, Kind: secretstore.ErrNotFound}
	}
	if holder == target {
		return nil
	}
	if holder != nil && holder.id != from {
		return bad("stage is attached to another version than RemoveFromVersionId")
	}
	if holder == nil && from != "" {
		return bad("RemoveFromVersionId does not hold the stage")
	}
	if holder != nil {
		holder.stages = slices.DeleteFunc(holder.stages, func(st string) bool { return st == stage })
	}
	target.stages = append(target.stages, stage)
	if stage == secretstore.StageCurrent && holder != nil {
		for _, v := range s.versions {
			v.stages = slices.DeleteFunc(v.stages, func(st string) bool { return st == secretstore.StagePrevious })
		}
		holder.stages = append(holder.stages, secretstore.StagePrevious)
	}
	return nil
}

func (m *memStore) List(_ context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	m.mu.Lock()
	if _, err := m.begin("List", ""); err != nil {
		m.mu.Unlock()
		return err
	}
	var out []secretstore.Secret
	names := make([]string, 0, len(m.secrets))
	for n := range m.secrets {
		names = append(names, n)
	}
	slices.Sort(names)
next:
	for _, n := range names {
		s := m.secrets[n]
		for _, f := range filters {
			v, ok := s.tags[f.Key]
			if !ok || (len(f.Values) > 0 && !slices.Contains(f.Values, v)) {
				continue next
			}
		}
		out = append(out, m.describeLocked(n, s))
	}
	m.mu.Unlock()
	for _, s := range out {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Tag(_ context.Context, name string, tags map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.begin("Tag", name)
	if err != nil {
		return err
	}
	for k, v := range tags {
		s.tags[k] = v
	}
	return nil
}

// stages returns version id -> stages of a secret, for assertions.
func (m *memStore) stages(name string) map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]string{}
	for _, v := range m.secrets[name].versions {
		st := slices.Clone(v.stages)
		slices.Sort(st)
		out[v.id] = st
	}
	return out
}

// current returns the stored AWSCURRENT credential without counting a call.
func (m *memStore) peek(name, stage string) (secretstore.Credential, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.secrets[name].versions {
		if slices.Contains(v.stages, stage) {
			c, err := secretstore.DecodeCredential(name, v.value)
			if err != nil {
				panic(err)
			}
			return c, v.id
		}
	}
	return secretstore.Credential{}, ""
}

func (m *memStore) tags(name string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.secrets[name].tags {
		out[k] = v
	}
	return out
}

var _ secretstore.Store = (*memStore)(nil)
