package localstore

// The store file: its format, strict decoding (errors that never quote the
// values it holds), the atomic save, and rollback on a failed save.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// fileFormatVersion is the version of the file layout; others are refused.
const fileFormatVersion = 1

// fileMode is the only mode the store writes and accepts (no group or other bits).
const fileMode fs.FileMode = 0o600

type fileData struct {
	FormatVersion int                `json:"format_version"`
	Secrets       map[string]*record `json:"secrets"`
}

type record struct {
	Name          string            `json:"name"`
	ARN           string            `json:"arn"`
	Description   string            `json:"description,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	LastChangedAt time.Time         `json:"last_changed_at"`
	DeletedAt     *time.Time        `json:"deleted_at,omitempty"`
	Versions      []*version        `json:"versions"`
}

type version struct {
	ID        string    `json:"id"`
	Value     string    `json:"value"` // plain: the file is the store
	Stages    []string  `json:"stages"`
	CreatedAt time.Time `json:"created_at"`
}

func decode(b []byte, d *fileData) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		// Errors from encoding/json can quote the input, which holds secrets.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("not a store file: invalid JSON at line %d", lineOf(b, se.Offset))
		case errors.As(err, &te):
			return fmt.Errorf("not a store file: field %q at line %d: expected %s", te.Field, lineOf(b, te.Offset), te.Type)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("not a store file: JSON ends early at line %d", lineOf(b, int64(len(b))))
		default:
			return errors.New("not a store file: malformed JSON")
		}
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return fmt.Errorf("not a store file: data after the JSON object at line %d", lineOf(b, dec.InputOffset()))
	}
	if d.FormatVersion != fileFormatVersion {
		return fmt.Errorf("field \"format_version\": %d is not a known format (want %d)", d.FormatVersion, fileFormatVersion)
	}
	if d.Secrets == nil {
		d.Secrets = map[string]*record{}
	}
	for key, r := range d.Secrets {
		if r == nil || r.Name != key {
			return fmt.Errorf("secret %q: record missing or named differently", key)
		}
		if r.Tags == nil {
			r.Tags = map[string]string{}
		}
		for i, v := range r.Versions {
			if v == nil || v.ID == "" {
				return fmt.Errorf("secret %q: version %d has no id", key, i)
			}
		}
	}
	return nil
}

func lineOf(b []byte, offset int64) int {
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	return bytes.Count(b[:offset], []byte("\n")) + 1
}

// save writes the whole store atomically: a temporary file in the same
// directory, fsynced, renamed over the old one, and the directory fsynced.
// Called with mu held.
func (s *Store) save() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.data, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after the rename
	if err := tmp.Chmod(fileMode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, s.path); err != nil {
		return err
	}
	if err := s.saved(); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// commit saves after a change and, if saving fails, restores the state
// before it, so memory never runs ahead of the file. Called with mu held.
func (s *Store) commit(op, name string, before fileData) error {
	if err := s.save(); err != nil {
		s.data = before
		return &secretstore.Error{Op: op, Secret: name, Err: fmt.Errorf("write %s: %w", s.path, err)}
	}
	return nil
}

// snapshot deep-copies the data, for rollback. Called with mu held.
func (s *Store) snapshot() fileData {
	d := fileData{FormatVersion: s.data.FormatVersion, Secrets: make(map[string]*record, len(s.data.Secrets))}
	for k, r := range s.data.Secrets {
		d.Secrets[k] = r.clone()
	}
	return d
}

func (r *record) clone() *record {
	c := *r
	c.Tags = make(map[string]string, len(r.Tags))
	maps.Copy(c.Tags, r.Tags)
	if r.DeletedAt != nil {
		t := *r.DeletedAt
		c.DeletedAt = &t
	}
	c.Versions = make([]*version, len(r.Versions))
	for i, v := range r.Versions {
		vc := *v
		vc.Stages = slices.Clone(v.Stages)
		c.Versions[i] = &vc
	}
	return &c
}
