// Package localstore is a secretstore.Store in one local JSON file, with
// the semantics of AWS Secrets Manager: versions, staging labels (AWSPREVIOUS
// moved automatically), idempotent puts by client request token, tags,
// descriptions, deletion marks.
//
// It exists for the demo and for single-machine use. It is never a
// production default: the file holds every secret value in plain text,
// protected only by its 0600 mode.
//
// Every operation is a read or a read-modify-write of the one file under
// its lock (locked, read and change below); file.go holds the file format
// and the atomic save, records.go the label rules, lock.go the lock shared
// between processes.
package localstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Store is the local store. Safe for concurrent use within one process,
// and by several processes sharing one file: they take turns through an
// flock and each reads what the others wrote before it changes anything.
type Store struct {
	path  string // empty: in memory only
	clock clock.Clock

	mu     sync.Mutex
	data   fileData
	loaded os.FileInfo // the file data was read from or last written; nil: none yet
	mark   string      // the lock file's change mark when data was last read or written
	lock   *os.File    // the lock file, while an operation holds the lock
}

var _ secretstore.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock for creation, change and deletion times.
func WithClock(c clock.Clock) Option { return func(s *Store) { s.clock = c } }

// Open opens the store in the file at path, creating it on first write. An
// empty path gives an in-memory store. A file readable or writable by
// anyone but its owner, or one that is not a store file, is refused.
func Open(path string, opts ...Option) (*Store, error) {
	s := &Store{path: path, clock: clock.Real{}, data: fileData{FormatVersion: fileFormatVersion, Secrets: map[string]*record{}}}
	for _, o := range opts {
		o(s)
	}
	if path == "" {
		return s, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	release, err := s.acquire(lockShared)
	if err != nil {
		return nil, fmt.Errorf("localstore: %w", err)
	}
	release()
	return s, nil
}

// locked runs fn with mu and the file lock held: shared to read, exclusive
// to change (the file re-read first when another process changed it).
func (s *Store) locked(how int, op, name string, fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	release, err := s.acquire(how)
	if err != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: err}
	}
	defer release()
	return fn()
}

// read runs fn on the named secret's record under the shared lock.
func (s *Store) read(op, name string, allowDeleted bool, fn func(*record) error) error {
	return s.locked(lockShared, op, name, func() error {
		r, err := s.lookup(op, name, allowDeleted)
		if err != nil {
			return err
		}
		return fn(r)
	})
}

// errUnchanged is what a change function returns when there is nothing to
// write (an idempotent repeat): change then reports success.
var errUnchanged = errors.New("unchanged")

// change runs fn on the named secret's record under the exclusive lock and
// saves what it changed. When fn fails, or the save does, memory is put
// back as it was, so it never runs ahead of the file.
func (s *Store) change(op, name string, fn func(*record) error) error {
	return s.locked(lockExclusive, op, name, func() error {
		r, err := s.lookup(op, name, false)
		if err != nil {
			return err
		}
		before := s.snapshot()
		if err := fn(r); err != nil {
			s.data = before
			if errors.Is(err, errUnchanged) {
				return nil
			}
			return err
		}
		return s.commit(op, name, before)
	})
}

// Create makes a secret, as Terraform or a person would; initial, when not
// nil, becomes its first version with AWSCURRENT. Not part of
// secretstore.Store: the rotator never creates secrets.
func (s *Store) Create(ctx context.Context, name, description string, tags map[string]string, initial *secret.Value) (secretstore.Secret, error) {
	const op = "Create"
	if name == "" || len(name) > 512 {
		return secretstore.Secret{}, storeErr(op, name, secretstore.ErrInvalidRequest, "a name has 1 to 512 characters")
	}
	if initial != nil && initial.IsZero() {
		return secretstore.Secret{}, storeErr(op, name, secretstore.ErrInvalidRequest, "the initial value is empty")
	}
	var created secretstore.Secret
	err := s.locked(lockExclusive, op, name, func() error {
		if _, ok := s.data.Secrets[name]; ok {
			return storeErr(op, name, secretstore.ErrInvalidRequest, "a secret with this name already exists")
		}
		before := s.snapshot()
		now := s.now()
		r := &record{Name: name, ARN: "arn:local:secretsmanager:local:000000000000:secret:" + name + "-" + randomSuffix(),
			Description: description, Tags: map[string]string{}, CreatedAt: now, LastChangedAt: now}
		maps.Copy(r.Tags, tags)
		if initial != nil {
			r.Versions = append(r.Versions, &version{ID: randomVersionID(), Value: initial.Reveal(), Stages: []string{secretstore.StageCurrent}, CreatedAt: now})
		}
		s.data.Secrets[name] = r
		if err := s.commit(op, name, before); err != nil {
			return err
		}
		created = r.meta()
		return nil
	})
	return created, err
}

// ScheduleDeletion marks the secret for deletion, as AWS's DeleteSecret
// with a recovery window: it stays, unlisted and unusable.
func (s *Store) ScheduleDeletion(ctx context.Context, name string) error {
	return s.change("ScheduleDeletion", name, func(r *record) error {
		now := s.now()
		r.DeletedAt = &now
		return nil
	})
}

// Get reads one version's value: by id when set (and then the stage, if
// also set, must be on it), else by stage, else AWSCURRENT.
func (s *Store) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	const op = "Get"
	var got secretstore.Version
	err := s.read(op, name, false, func(r *record) error {
		var v *version
		switch {
		case sel.VersionID != "":
			if v = r.version(sel.VersionID); v == nil {
				return storeErr(op, name, secretstore.ErrNotFound, "no version %s", sel.VersionID)
			}
			if sel.Stage != "" && !slices.Contains(v.Stages, sel.Stage) {
				return storeErr(op, name, secretstore.ErrInvalidRequest, "version %s does not have stage %s", sel.VersionID, sel.Stage)
			}
		default:
			stage := sel.Stage
			if stage == "" {
				stage = secretstore.StageCurrent
			}
			if v = r.holder(stage); v == nil {
				return storeErr(op, name, secretstore.ErrNotFound, "no version has stage %s", stage)
			}
		}
		got = secretstore.Version{SecretName: r.Name, ARN: r.ARN, ID: v.ID, Stages: slices.Clone(v.Stages),
			Value: secret.New(v.Value), CreatedAt: v.CreatedAt}
		return nil
	})
	return got, err
}

// Describe returns the secret's metadata, also when it is scheduled for deletion.
func (s *Store) Describe(ctx context.Context, name string) (secretstore.Secret, error) {
	var sec secretstore.Secret
	err := s.read("Describe", name, true, func(r *record) error {
		sec = r.meta()
		return nil
	})
	return sec, err
}

// PutPending adds version versionID with AWSPENDING, moving the stage off
// any other version; the first version of a secret also gets AWSCURRENT,
// as in AWS. A repeat with the same value changes nothing; another value is
// ErrTokenReused.
func (s *Store) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	const op = "PutPending"
	if err := secretstore.CheckPut(name, versionID, value); err != nil {
		return err
	}
	return s.change(op, name, func(r *record) error {
		if v := r.version(versionID); v != nil {
			if secret.New(v.Value).Equal(value) {
				return errUnchanged
			}
			return storeErr(op, name, secretstore.ErrTokenReused, "version %s already holds another value", versionID)
		}
		now := s.now()
		nv := &version{ID: versionID, Value: value.Reveal(), Stages: []string{secretstore.StagePending}, CreatedAt: now}
		if len(r.Versions) == 0 {
			nv.Stages = append(nv.Stages, secretstore.StageCurrent)
		}
		for _, v := range r.Versions {
			v.remove(secretstore.StagePending)
		}
		r.Versions = append(r.Versions, nv)
		r.LastChangedAt = now
		return nil
	})
}

// MoveStage moves stage to toVersionID from fromVersionID, with AWS's
// checks: fromVersionID must hold the stage, and when another version holds
// it, fromVersionID must name it (ErrInvalidRequest otherwise: the caller
// raced another writer). Moving AWSCURRENT puts AWSPREVIOUS on the version
// that lost it. An empty toVersionID only removes the stage.
func (s *Store) MoveStage(ctx context.Context, name, stage, toVersionID, fromVersionID string) error {
	const op = "MoveStage"
	if err := secretstore.CheckMove(name, stage, toVersionID, fromVersionID); err != nil {
		return err
	}
	return s.change(op, name, func(r *record) error {
		var to, from *version
		if toVersionID != "" {
			if to = r.version(toVersionID); to == nil {
				return storeErr(op, name, secretstore.ErrNotFound, "no version %s", toVersionID)
			}
		}
		if fromVersionID != "" {
			if from = r.version(fromVersionID); from == nil {
				return storeErr(op, name, secretstore.ErrNotFound, "no version %s", fromVersionID)
			}
			if !slices.Contains(from.Stages, stage) {
				return storeErr(op, name, secretstore.ErrInvalidRequest, "stage %s is not on version %s", stage, fromVersionID)
			}
		}
		if h := r.holder(stage); h != nil && from == nil && h != to {
			return storeErr(op, name, secretstore.ErrInvalidRequest, "stage %s is on version %s; name it as the version to remove it from", stage, h.ID)
		}
		if from != nil && from != to {
			from.remove(stage)
		}
		if to != nil {
			to.add(stage)
		}
		if stage == secretstore.StageCurrent && from != nil && from != to {
			for _, v := range r.Versions {
				v.remove(secretstore.StagePrevious)
			}
			from.add(secretstore.StagePrevious)
		}
		r.LastChangedAt = s.now()
		return nil
	})
}

// List calls fn for every secret not scheduled for deletion that passes
// all filters, in name order. fn runs without the lock held, so it may
// call the store.
func (s *Store) List(ctx context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	var out []secretstore.Secret
	err := s.locked(lockShared, "List", "", func() error {
		for _, r := range s.data.Secrets {
			if r.DeletedAt == nil && r.matches(filters) {
				out = append(out, r.meta())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for _, sec := range out {
		if err := ctx.Err(); err != nil {
			return &secretstore.Error{Op: "List", Err: err}
		}
		if err := fn(sec); err != nil {
			return err
		}
	}
	return nil
}

// Tag sets tags on the secret.
func (s *Store) Tag(ctx context.Context, name string, tags map[string]string) error {
	return s.change("Tag", name, func(r *record) error {
		maps.Copy(r.Tags, tags)
		return nil
	})
}
