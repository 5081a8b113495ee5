package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// casAttempts bounds how often one call re-reads and retries after losing a
// check-and-set race before it reports the race.
const casAttempts = 20

// casPause waits a little before a retry after a lost race, longer each
// time and jittered, so that racing writers spread out instead of
// colliding again.
func casPause(ctx context.Context, attempt int) {
	d := time.Duration(attempt+1)*time.Millisecond + time.Duration(rand.Int64N(int64(5*time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Store is the Vault KV v2 implementation of secretstore.Store. Safe for
// concurrent use.
type Store struct {
	client *api.Client
	tokens *tokens
	mount  string
	ns     string
	paths  []string
}

var _ secretstore.Store = (*Store)(nil)

// New builds a client for cfg and returns a store on it. It does not call
// Vault: the first operation logs in.
func New(cfg Config) (*Store, error) {
	client, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vaultstore: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	switch cfg.Auth.Method {
	case AuthToken, "":
		if cfg.Auth.Token.IsZero() {
			return nil, errors.New("vaultstore: auth method token needs a token")
		}
	case AuthAppRole:
		if cfg.Auth.RoleID == "" || cfg.Auth.SecretID.IsZero() {
			return nil, errors.New("vaultstore: auth method approle needs a role id and a secret id")
		}
	case AuthAWS:
		if cfg.Auth.Role == "" {
			return nil, errors.New("vaultstore: auth method aws needs a Vault role")
		}
		if cfg.Auth.AWSCredentials == nil {
			return nil, errors.New("vaultstore: auth method aws needs AWS credentials")
		}
	default:
		return nil, fmt.Errorf("vaultstore: auth method %q is not one of token, approle, aws", cfg.Auth.Method)
	}
	mount := strings.Trim(cfg.Mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	var paths []string
	for _, p := range cfg.Paths {
		p = strings.Trim(p, "/")
		if p != "" {
			p += "/"
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		paths = []string{""}
	}
	ns := strings.Trim(cfg.Namespace, "/")
	if ns != "" {
		ns += "/"
	}
	return &Store{
		client: client,
		tokens: &tokens{client: client, auth: cfg.Auth, ns: cfg.Namespace, clock: cfg.Clock},
		mount:  mount,
		ns:     ns,
		paths:  paths,
	}, nil
}

func (s *Store) dataPath(name string) string { return s.mount + "/data/" + name }
func (s *Store) metaPath(name string) string { return s.mount + "/metadata/" + name }

// ARN is the store's stable reference of a secret: "vault:" + namespace +
// mount + "/" + name. It is the same on every replica and Vault node.
func (s *Store) ARN(name string) string { return "vault:" + s.ns + s.mount + "/" + name }

// checkName refuses names that are not a plain KV path.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return fmt.Errorf("%q is not a secret path (no leading or trailing /)", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q is not a secret path (empty, . or .. segment)", name)
		}
	}
	return nil
}

// call runs one request with a valid token; a token Vault refuses
// (revoked, or renewed elsewhere) is replaced once when it can be.
func (s *Store) call(ctx context.Context, fn func() (*api.Secret, error)) (*api.Secret, error) {
	if err := s.tokens.ensure(ctx); err != nil {
		return nil, err
	}
	out, err := fn()
	if statusOf(err) == http.StatusForbidden && s.tokens.renewable() {
		s.tokens.invalidate()
		if lerr := s.tokens.ensure(ctx); lerr != nil {
			return nil, lerr
		}
		out, err = fn()
	}
	return out, err
}

func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, m := range re.Errors {
		if strings.Contains(m, "check-and-set") {
			return true
		}
	}
	return false
}

// PutPending writes value as a new KV version with the version id in its
// data and AWSPENDING on it, with cas so that of two writers computing from
// the same version one wins; the loser reads again. A repeat with the same
// id and value changes nothing; another value is ErrTokenReused.
func (s *Store) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	const op = "PutPending"
	if err := secretstore.CheckPut(name, versionID, value); err != nil {
		return err
	}
	return s.withCAS(ctx, op, name, func(st *state) error {
		if kv, ok := st.rec.kvOf(versionID); ok {
			data, err := s.readVersion(ctx, op, name, kv)
			if err != nil {
				return err
			}
			stored, err := credentialValue(data, versionID)
			if err != nil {
				return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue,
					Err: fmt.Errorf("version %d of %s: %w", kv, s.dataPath(name), err)}
			}
			if !stored.Equal(value) {
				return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrTokenReused,
					Err: fmt.Errorf("version id %s is version %d of %s, written with another value", versionID, kv, s.dataPath(name))}
			}
			return s.refreshView(ctx, op, name, st)
		}
		next := st.rec.clone()
		n := st.meta.Current + 1
		next.Versions[n] = versionID
		next.Stages[secretstore.StagePending] = n
		if _, ok := next.Stages[secretstore.StageCurrent]; !ok {
			next.Stages[secretstore.StageCurrent] = n // the first version is current, as on AWS
		}
		err := s.write(ctx, op, name, st.meta.Current, map[string]any{
			dataRecord: next.encode(), dataVersionID: versionID, dataValue: value.Reveal(),
		})
		if err != nil {
			return err
		}
		return s.writeView(ctx, op, name, n, next)
	})
}

// withCAS runs change on the secret's state until its check-and-set write
// wins: when change returns errCASLost, the state is read again (and
// change checks again against what won), casAttempts times at most.
func (s *Store) withCAS(ctx context.Context, op, name string, change func(*state) error) error {
	var last int
	for attempt := 0; attempt < casAttempts; attempt++ {
		st, err := s.load(ctx, op, name)
		if err != nil {
			return err
		}
		if st.deletedAt != nil {
			return s.scheduled(op, name, st)
		}
		err = change(st)
		if !errors.Is(err, errCASLost) {
			return err
		}
		last = st.meta.Current
		casPause(ctx, attempt)
	}
	return s.casRace(op, name, last)
}

var errCASLost = errors.New("check-and-set lost")

func (s *Store) casRace(op, name string, from int) error {
	return &secretstore.Error{Op: op, Secret: name,
		Err: fmt.Errorf("check-and-set race on %s: another writer wrote after version %d on each of %d attempts; try again",
			s.dataPath(name), from, casAttempts)}
}

// write adds a KV version with check-and-set on cas (0: the secret has no
// version yet). Losing the race is errCASLost.
func (s *Store) write(ctx context.Context, op, name string, cas int, data map[string]any) error {
	path := s.dataPath(name)
	_, err := s.call(ctx, func() (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, path, map[string]any{"options": map[string]any{"cas": cas}, "data": data})
	})
	if isCASMismatch(err) {
		return errCASLost
	}
	if err != nil {
		return s.fail(op, name, path, "update", err)
	}
	return nil
}

// MoveStage puts stage on toVersionID and removes it from fromVersionID
// (which must hold it), as one check-and-set write of the stage record.
// Moving AWSCURRENT puts AWSPREVIOUS on the version that lost it. An empty
// toVersionID only removes the stage.
func (s *Store) MoveStage(ctx context.Context, name, stage, toVersionID, fromVersionID string) error {
	const op = "MoveStage"
	if err := secretstore.CheckMove(name, stage, toVersionID, fromVersionID); err != nil {
		return err
	}
	return s.withCAS(ctx, op, name, func(st *state) error {
		next, changed, err := s.moved(name, st.rec, stage, toVersionID, fromVersionID)
		if err != nil {
			return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest, Err: err}
		}
		if !changed {
			return s.refreshView(ctx, op, name, st)
		}
		if err := s.write(ctx, op, name, st.meta.Current, map[string]any{dataRecord: next.encode()}); err != nil {
			return err
		}
		return s.writeView(ctx, op, name, st.meta.Current+1, next)
	})
}

// moved computes the record after a stage move, with AWS's checks.
func (s *Store) moved(name string, rec record, stage, to, from string) (record, bool, error) {
	path := s.dataPath(name)
	holder, held := rec.Stages[stage]
	if from != "" {
		fromKV, ok := rec.kvOf(from)
		if !ok {
			return rec, false, fmt.Errorf("version %s is not a version of %s", from, path)
		}
		if !held || holder != fromKV {
			where := "no version"
			if held {
				where = "version " + rec.Versions[holder]
			}
			return rec, false, fmt.Errorf("%s is on %s of %s, not on %s (another writer moved it)", stage, where, path, from)
		}
	}
	next := rec.clone()
	if to == "" {
		delete(next.Stages, stage)
		return next, true, nil
	}
	toKV, ok := rec.kvOf(to)
	if !ok {
		return rec, false, fmt.Errorf("version %s is not a version of %s", to, path)
	}
	if held && holder == toKV {
		return rec, false, nil // already there
	}
	if from == "" && held {
		return rec, false, fmt.Errorf("%s is on version %s of %s; name it as the version to move from", stage, rec.Versions[holder], path)
	}
	next.Stages[stage] = toKV
	if stage == secretstore.StageCurrent && held {
		next.Stages[secretstore.StagePrevious] = holder
	}
	return next, true, nil
}

// Tag sets tags as custom metadata, leaving other keys alone.
func (s *Store) Tag(ctx context.Context, name string, tags map[string]string) error {
	const op = "Tag"
	if err := checkName(name); err != nil {
		return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest, Err: err}
	}
	if len(tags) == 0 {
		return nil
	}
	patch := map[string]any{}
	for k, v := range tags {
		if strings.HasPrefix(k, reservedPrefix) {
			return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest,
				Err: fmt.Errorf("tag %q: keys starting with %q are the store's own", k, reservedPrefix)}
		}
		patch[k] = v
	}
	return s.patchCustom(ctx, op, name, patch)
}
