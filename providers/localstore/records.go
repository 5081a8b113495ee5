package localstore

// A secret's record and its versions: lookup by name or ARN, the stage
// holders, the metadata the store hands out, and the random ids AWS would
// make.

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func (s *Store) now() time.Time { return s.clock.Now().UTC() }

func storeErr(op, name string, kind error, format string, args ...any) error {
	var err error
	if format != "" {
		err = fmt.Errorf(format, args...)
	}
	return &secretstore.Error{Op: op, Secret: name, Kind: kind, Err: err}
}

// lookup finds a secret by name or ARN. Called with mu held.
func (s *Store) lookup(op, name string, allowDeleted bool) (*record, error) {
	r, ok := s.data.Secrets[name]
	if !ok {
		for _, c := range s.data.Secrets {
			if c.ARN == name {
				r, ok = c, true
				break
			}
		}
	}
	if !ok {
		return nil, storeErr(op, name, secretstore.ErrNotFound, "")
	}
	if r.DeletedAt != nil && !allowDeleted {
		return nil, storeErr(op, name, secretstore.ErrScheduledForDeletion, "")
	}
	return r, nil
}

func (r *record) version(id string) *version {
	for _, v := range r.Versions {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (r *record) holder(stage string) *version {
	for _, v := range r.Versions {
		if slices.Contains(v.Stages, stage) {
			return v
		}
	}
	return nil
}

func (v *version) remove(stage string) {
	v.Stages = slices.DeleteFunc(v.Stages, func(s string) bool { return s == stage })
}

func (v *version) add(stage string) {
	if !slices.Contains(v.Stages, stage) {
		v.Stages = append(v.Stages, stage)
	}
}

func (r *record) meta() secretstore.Secret {
	sec := secretstore.Secret{Name: r.Name, ARN: r.ARN, Description: r.Description, Tags: map[string]string{}, LastChangedAt: r.LastChangedAt}
	maps.Copy(sec.Tags, r.Tags)
	if r.DeletedAt != nil {
		t := *r.DeletedAt
		sec.DeletedAt = &t
	}
	for _, v := range r.Versions {
		sec.Versions = append(sec.Versions, secretstore.VersionInfo{ID: v.ID, Stages: slices.Clone(v.Stages), CreatedAt: v.CreatedAt})
	}
	return sec
}

func (r *record) matches(filters []secretstore.TagFilter) bool {
	for _, f := range filters {
		v, ok := r.Tags[f.Key]
		if !ok || (len(f.Values) > 0 && !slices.Contains(f.Values, v)) {
			return false
		}
	}
	return true
}

func randomSuffix() string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

func randomVersionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
