package vaultstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

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
