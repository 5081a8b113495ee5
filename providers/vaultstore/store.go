package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
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

// readMetadata reads the secret's metadata; a secret that does not exist is ErrNotFound.
func (s *Store) readMetadata(ctx context.Context, op, name string) (metadata, error) {
	path := s.metaPath(name)
	sec, err := s.call(ctx, func() (*api.Secret, error) { return s.client.Logical().ReadWithContext(ctx, path) })
	if err != nil {
		return metadata{}, s.fail(op, name, path, "read", err)
	}
	if sec == nil || sec.Data == nil {
		return metadata{}, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrNotFound, Err: fmt.Errorf("no secret at %s", path)}
	}
	m, err := parseMetadata(sec.Data)
	if err != nil {
		return metadata{}, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return m, nil
}

// readVersion reads one KV version's data. A deleted or destroyed version is
// ErrNotFound saying which, and whether it can be brought back.
func (s *Store) readVersion(ctx context.Context, op, name string, kv int) (map[string]any, error) {
	path := s.dataPath(name)
	sec, err := s.call(ctx, func() (*api.Secret, error) {
		return s.client.Logical().ReadWithDataWithContext(ctx, path, map[string][]string{"version": {strconv.Itoa(kv)}})
	})
	if err != nil {
		return nil, s.fail(op, name, path, "read", err)
	}
	if sec == nil || sec.Data == nil {
		return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrNotFound, Err: fmt.Errorf("%s has no version %d", path, kv)}
	}
	data, _ := sec.Data["data"].(map[string]any)
	if data == nil {
		v := versionOf(mapField(sec.Data, "metadata"))
		return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrNotFound, Err: goneError(s.mount, name, kv, v)}
	}
	return data, nil
}

func mapField(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

// goneError says what happened to a version the record still names.
func goneError(mount, name string, kv int, v kvVersion) error {
	path := mount + "/data/" + name
	switch {
	case v.Destroyed:
		return fmt.Errorf("version %d of %s was destroyed and cannot be brought back", kv, path)
	case v.DeletedAt != nil:
		return fmt.Errorf("version %d of %s was deleted at %s; bring it back with: vault kv undelete -mount=%s -versions=%d %s",
			kv, path, v.DeletedAt.UTC().Format(time.RFC3339), mount, kv, name)
	default:
		return fmt.Errorf("version %d of %s has no data", kv, path)
	}
}

// state is what one read of a secret tells: its metadata and its stage record.
type state struct {
	meta metadata
	rec  record
	// deletedAt is set when the latest version is soft-deleted: the secret
	// counts as scheduled for deletion and rec is empty.
	deletedAt *time.Time
}

// load reads the metadata and the stage record in the latest version,
// adopting versions written by hand on top of the newest record.
func (s *Store) load(ctx context.Context, op, name string) (*state, error) {
	if err := checkName(name); err != nil {
		return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest, Err: err}
	}
	meta, err := s.readMetadata(ctx, op, name)
	if err != nil {
		return nil, err
	}
	return s.loadRecord(ctx, op, name, meta)
}

func (s *Store) loadRecord(ctx context.Context, op, name string, meta metadata) (*state, error) {
	st := &state{meta: meta, rec: newRecord()}
	if meta.Current == 0 {
		return st, nil
	}
	if latest, ok := meta.Versions[meta.Current]; ok {
		if latest.Destroyed {
			return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue,
				Err: fmt.Errorf("the latest version (%d) of %s was destroyed, and the stage record in it with it; "+
					"restore the stages by hand (see the vaultstore package doc) or recreate the secret", meta.Current, s.dataPath(name))}
		}
		if latest.DeletedAt != nil {
			st.deletedAt = latest.DeletedAt
			return st, nil
		}
	}
	var adopted []int
	for kv := meta.Current; kv >= 1; kv-- {
		v, ok := meta.Versions[kv]
		if !ok {
			break // older versions are gone (max_versions)
		}
		if v.Destroyed || v.DeletedAt != nil {
			continue
		}
		data, err := s.readVersion(ctx, op, name, kv)
		if err != nil {
			return nil, err
		}
		rec, has, err := decodeRecord(data)
		if err != nil {
			return nil, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue,
				Err: fmt.Errorf("version %d of %s: %w", kv, s.dataPath(name), err)}
		}
		if has {
			st.rec = rec
			break
		}
		adopted = append(adopted, kv)
	}
	for i := len(adopted) - 1; i >= 0; i-- {
		st.rec.adopt(adopted[i])
	}
	st.rec.keepOnly(func(kv int) bool { _, ok := meta.Versions[kv]; return ok })
	return st, nil
}

func (s *Store) scheduled(op, name string, st *state) error {
	return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrScheduledForDeletion,
		Err: fmt.Errorf("the latest version (%d) of %s was deleted at %s; bring it back with: vault kv undelete -mount=%s -versions=%d %s",
			st.meta.Current, s.dataPath(name), st.deletedAt.UTC().Format(time.RFC3339), s.mount, st.meta.Current, name)}
}

// Get reads one version's value, by id when the selector has one, else by
// stage (AWSCURRENT when neither is set).
func (s *Store) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	const op = "Get"
	st, err := s.load(ctx, op, name)
	if err != nil {
		return secretstore.Version{}, err
	}
	if st.deletedAt != nil {
		return secretstore.Version{}, s.scheduled(op, name, st)
	}
	var kv int
	var ok bool
	switch {
	case sel.VersionID != "":
		kv, ok = st.rec.kvOf(sel.VersionID)
		if ok && sel.Stage != "" && st.rec.Stages[sel.Stage] != kv {
			ok = false
		}
	default:
		stage := sel.Stage
		if stage == "" {
			stage = secretstore.StageCurrent
		}
		kv, ok = st.rec.Stages[stage]
	}
	if !ok {
		return secretstore.Version{}, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrNotFound,
			Err: fmt.Errorf("%s has no version %s", s.dataPath(name), describeSelector(sel))}
	}
	data, err := s.readVersion(ctx, op, name, kv)
	if err != nil {
		return secretstore.Version{}, err
	}
	id := st.rec.Versions[kv]
	value, err := credentialValue(data, id)
	if err != nil {
		return secretstore.Version{}, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue,
			Err: fmt.Errorf("version %d of %s: %w", kv, s.dataPath(name), err)}
	}
	return secretstore.Version{
		SecretName: name,
		ARN:        s.ARN(name),
		ID:         id,
		Stages:     st.rec.stagesOf(kv),
		Value:      value,
		CreatedAt:  st.meta.Versions[kv].Created,
	}, nil
}

func describeSelector(sel secretstore.Selector) string {
	switch {
	case sel.VersionID != "" && sel.Stage != "":
		return fmt.Sprintf("with id %s and stage %s", sel.VersionID, sel.Stage)
	case sel.VersionID != "":
		return "with id " + sel.VersionID
	case sel.Stage != "":
		return "with stage " + sel.Stage
	}
	return "with stage " + secretstore.StageCurrent
}

// credentialValue takes the value out of a version's data, checking that the
// version is the one the record says (a version written by hand has no id).
func credentialValue(data map[string]any, id string) (secret.Value, error) {
	if got, _ := data[dataVersionID].(string); got != "" && got != id {
		return secret.Value{}, fmt.Errorf("holds version id %q where the stage record says %q", got, id)
	}
	v, ok := data[dataValue].(string)
	if !ok || v == "" {
		return secret.Value{}, fmt.Errorf("has no string field %q", dataValue)
	}
	return secret.New(v), nil
}

// Describe returns the secret's metadata, tags and versions with stages.
func (s *Store) Describe(ctx context.Context, name string) (secretstore.Secret, error) {
	const op = "Describe"
	st, err := s.load(ctx, op, name)
	if err != nil {
		return secretstore.Secret{}, err
	}
	return s.toSecret(name, st), nil
}

func (s *Store) toSecret(name string, st *state) secretstore.Secret {
	sec := secretstore.Secret{
		Name:          name,
		ARN:           s.ARN(name),
		Description:   st.meta.Custom[metaDescription],
		Tags:          tagsOf(st.meta.Custom),
		DeletedAt:     st.deletedAt,
		LastChangedAt: st.meta.Updated,
	}
	if sec.LastChangedAt.IsZero() {
		sec.LastChangedAt = st.meta.Created
	}
	for kv, id := range st.rec.Versions {
		sec.Versions = append(sec.Versions, secretstore.VersionInfo{ID: id, Stages: st.rec.stagesOf(kv), CreatedAt: st.meta.Versions[kv].Created})
	}
	sort.Slice(sec.Versions, func(i, j int) bool { return sec.Versions[i].ID < sec.Versions[j].ID })
	return sec
}

func tagsOf(custom map[string]string) map[string]string {
	tags := map[string]string{}
	for k, v := range custom {
		if !strings.HasPrefix(k, reservedPrefix) {
			tags[k] = v
		}
	}
	return tags
}

// PutPending writes value as a new KV version with the version id in its
// data and AWSPENDING on it, with cas so that of two writers computing from
// the same version one wins; the loser reads again. A repeat with the same
// id and value changes nothing; another value is ErrTokenReused.
func (s *Store) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	const op = "PutPending"
	if err := checkPut(versionID, value); err != nil {
		return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest, Err: err}
	}
	var last int
	for attempt := 0; attempt < casAttempts; attempt++ {
		st, err := s.load(ctx, op, name)
		if err != nil {
			return err
		}
		if st.deletedAt != nil {
			return s.scheduled(op, name, st)
		}
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
		err = s.write(ctx, op, name, st.meta.Current, map[string]any{
			dataRecord: next.encode(), dataVersionID: versionID, dataValue: value.Reveal(),
		})
		if errors.Is(err, errCASLost) {
			last = st.meta.Current
			casPause(ctx, attempt)
			continue
		}
		if err != nil {
			return err
		}
		return s.writeView(ctx, op, name, n, next)
	}
	return s.casRace(op, name, last)
}

// checkPut holds a put to the same constraints as the other stores
// (Secrets Manager's), so that every store rejects the same input.
func checkPut(versionID string, value secret.Value) error {
	if n := len(versionID); n < 32 || n > 64 {
		return fmt.Errorf("version id %q has %d characters; want 32 to 64", versionID, n)
	}
	if value.IsZero() {
		return errors.New("the value is empty")
	}
	return nil
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
	if stage == "" || (toVersionID == "" && fromVersionID == "") {
		return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest,
			Err: errors.New("need a stage and a version to move it to or from")}
	}
	var last int
	for attempt := 0; attempt < casAttempts; attempt++ {
		st, err := s.load(ctx, op, name)
		if err != nil {
			return err
		}
		if st.deletedAt != nil {
			return s.scheduled(op, name, st)
		}
		next, changed, err := s.moved(name, st.rec, stage, toVersionID, fromVersionID)
		if err != nil {
			return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest, Err: err}
		}
		if !changed {
			return s.refreshView(ctx, op, name, st)
		}
		err = s.write(ctx, op, name, st.meta.Current, map[string]any{dataRecord: next.encode()})
		if errors.Is(err, errCASLost) {
			last = st.meta.Current
			casPause(ctx, attempt)
			continue // re-read: the move is checked again against what won
		}
		if err != nil {
			return err
		}
		return s.writeView(ctx, op, name, st.meta.Current+1, next)
	}
	return s.casRace(op, name, last)
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

func (s *Store) patchCustom(ctx context.Context, op, name string, custom map[string]any) error {
	path := s.metaPath(name)
	_, err := s.call(ctx, func() (*api.Secret, error) {
		return s.client.Logical().JSONMergePatch(ctx, path, map[string]any{"custom_metadata": custom})
	})
	if err != nil {
		return s.fail(op, name, path, "patch", err)
	}
	return nil
}

// writeView copies the record written as KV version at into custom
// metadata. Two copies can land out of order; when this one overwrote a
// newer one, the newest record is copied again.
func (s *Store) writeView(ctx context.Context, op, name string, at int, rec record) error {
	for range 3 {
		if err := s.patchCustom(ctx, op, name, rec.view(at)); err != nil {
			return &secretstore.Error{Op: op, Secret: name, Kind: kindOf(err),
				Err: fmt.Errorf("the stages are written (version %d of %s) but copying them into custom metadata failed: %w", at, s.dataPath(name), err)}
		}
		meta, err := s.readMetadata(ctx, op, name)
		if err != nil || meta.Current == at || meta.Custom[metaRecord] != strconv.Itoa(at) {
			return nil // up to date, or a newer writer will copy its own
		}
		st, err := s.loadRecord(ctx, op, name, meta)
		if err != nil || st.deletedAt != nil {
			return nil
		}
		at, rec = meta.Current, st.rec
	}
	return nil
}

// refreshView copies the record again when the copy is behind (a crash
// between the data write and the copy).
func (s *Store) refreshView(ctx context.Context, op, name string, st *state) error {
	if st.meta.Current == 0 || st.meta.Custom[metaRecord] == strconv.Itoa(st.meta.Current) {
		return nil
	}
	return s.writeView(ctx, op, name, st.meta.Current, st.rec)
}

func kindOf(err error) error {
	var se *secretstore.Error
	if errors.As(err, &se) {
		return se.Kind
	}
	return nil
}

// List walks the metadata under the configured paths and calls fn for
// every secret whose custom metadata passes the filters, secrets whose
// latest version is deleted excluded.
func (s *Store) List(ctx context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	const op = "List"
	for _, p := range s.paths {
		if err := s.walk(ctx, op, p, filters, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) walk(ctx context.Context, op, folder string, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	path := s.mount + "/metadata/" + folder
	sec, err := s.call(ctx, func() (*api.Secret, error) { return s.client.Logical().ListWithContext(ctx, path) })
	if err != nil {
		return s.fail(op, folder, path, "list", err)
	}
	if sec == nil || sec.Data == nil {
		return nil
	}
	raw, _ := sec.Data["keys"].([]any)
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		if ks, ok := k.(string); ok {
			keys = append(keys, ks)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			if err := s.walk(ctx, op, folder+k, filters, fn); err != nil {
				return err
			}
			continue
		}
		name := folder + k
		meta, err := s.readMetadata(ctx, op, name)
		if errors.Is(err, secretstore.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return err
		}
		if !matches(meta.Custom, filters) {
			continue
		}
		st, err := s.loadRecord(ctx, op, name, meta)
		if errors.Is(err, secretstore.ErrMalformedValue) {
			// One secret whose stage record is unreadable must not hide
			// every other: it is listed without versions, and every call on
			// it fails with the error that says what is wrong.
			st, err = &state{meta: meta, rec: newRecord()}, nil
		}
		if err != nil {
			return err
		}
		if st.deletedAt != nil {
			continue
		}
		if err := fn(s.toSecret(name, st)); err != nil {
			return err
		}
	}
	return nil
}

func matches(custom map[string]string, filters []secretstore.TagFilter) bool {
	for _, f := range filters {
		v, ok := custom[f.Key]
		if !ok || strings.HasPrefix(f.Key, reservedPrefix) {
			return false
		}
		if len(f.Values) > 0 && !contains(f.Values, v) {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
