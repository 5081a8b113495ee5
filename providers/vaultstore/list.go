package vaultstore

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

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
