package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

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
