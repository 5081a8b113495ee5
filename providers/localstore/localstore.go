// Package localstore is a secretstore.Store in one local JSON file, with
// the semantics of AWS Secrets Manager: versions, staging labels (AWSPREVIOUS
// moved automatically), idempotent puts by client request token, tags,
// descriptions, deletion marks.
//
// It exists for the demo and for single-machine use. It is never a
// production default: the file holds every secret value in plain text,
// protected only by its 0600 mode.
//
// This file is long on purpose: every operation is a read-modify-write of
// the one file under its lock, and keeping them beside the file format and
// the label rules they share makes the Secrets Manager semantics checkable
// in one read.
package localstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
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
	for k, v := range r.Tags {
		c.Tags[k] = v
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockExclusive)
	if lockErr != nil {
		return secretstore.Secret{}, &secretstore.Error{Op: op, Secret: name, Err: lockErr}
	}
	defer release()
	if _, ok := s.data.Secrets[name]; ok {
		return secretstore.Secret{}, storeErr(op, name, secretstore.ErrInvalidRequest, "a secret with this name already exists")
	}
	before := s.snapshot()
	now := s.now()
	r := &record{Name: name, ARN: "arn:local:secretsmanager:local:000000000000:secret:" + name + "-" + randomSuffix(),
		Description: description, Tags: map[string]string{}, CreatedAt: now, LastChangedAt: now}
	for k, v := range tags {
		r.Tags[k] = v
	}
	if initial != nil {
		r.Versions = append(r.Versions, &version{ID: randomVersionID(), Value: initial.Reveal(), Stages: []string{secretstore.StageCurrent}, CreatedAt: now})
	}
	s.data.Secrets[name] = r
	if err := s.commit(op, name, before); err != nil {
		return secretstore.Secret{}, err
	}
	return r.meta(), nil
}

// ScheduleDeletion marks the secret for deletion, as AWS's DeleteSecret
// with a recovery window: it stays, unlisted and unusable.
func (s *Store) ScheduleDeletion(ctx context.Context, name string) error {
	const op = "ScheduleDeletion"
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockExclusive)
	if lockErr != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: lockErr}
	}
	defer release()
	r, err := s.lookup(op, name, false)
	if err != nil {
		return err
	}
	before := s.snapshot()
	now := s.now()
	r.DeletedAt = &now
	return s.commit(op, name, before)
}

// Get reads one version's value: by id when set (and then the stage, if
// also set, must be on it), else by stage, else AWSCURRENT.
func (s *Store) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	const op = "Get"
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockShared)
	if lockErr != nil {
		return secretstore.Version{}, &secretstore.Error{Op: op, Secret: name, Err: lockErr}
	}
	defer release()
	r, err := s.lookup(op, name, false)
	if err != nil {
		return secretstore.Version{}, err
	}
	var v *version
	switch {
	case sel.VersionID != "":
		if v = r.version(sel.VersionID); v == nil {
			return secretstore.Version{}, storeErr(op, name, secretstore.ErrNotFound, "no version %s", sel.VersionID)
		}
		if sel.Stage != "" && !slices.Contains(v.Stages, sel.Stage) {
			return secretstore.Version{}, storeErr(op, name, secretstore.ErrInvalidRequest, "version %s does not have stage %s", sel.VersionID, sel.Stage)
		}
	default:
		stage := sel.Stage
		if stage == "" {
			stage = secretstore.StageCurrent
		}
		if v = r.holder(stage); v == nil {
			return secretstore.Version{}, storeErr(op, name, secretstore.ErrNotFound, "no version has stage %s", stage)
		}
	}
	return secretstore.Version{SecretName: r.Name, ARN: r.ARN, ID: v.ID, Stages: slices.Clone(v.Stages),
		Value: secret.New(v.Value), CreatedAt: v.CreatedAt}, nil
}

// Describe returns the secret's metadata, also when it is scheduled for deletion.
func (s *Store) Describe(ctx context.Context, name string) (secretstore.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockShared)
	if lockErr != nil {
		return secretstore.Secret{}, &secretstore.Error{Op: "Describe", Secret: name, Err: lockErr}
	}
	defer release()
	r, err := s.lookup("Describe", name, true)
	if err != nil {
		return secretstore.Secret{}, err
	}
	return r.meta(), nil
}

func (r *record) meta() secretstore.Secret {
	sec := secretstore.Secret{Name: r.Name, ARN: r.ARN, Description: r.Description, Tags: map[string]string{}, LastChangedAt: r.LastChangedAt}
	for k, v := range r.Tags {
		sec.Tags[k] = v
	}
	if r.DeletedAt != nil {
		t := *r.DeletedAt
		sec.DeletedAt = &t
	}
	for _, v := range r.Versions {
		sec.Versions = append(sec.Versions, secretstore.VersionInfo{ID: v.ID, Stages: slices.Clone(v.Stages), CreatedAt: v.CreatedAt})
	}
	return sec
}

// PutPending adds version versionID with AWSPENDING, moving the stage off
// any other version; the first version of a secret also gets AWSCURRENT,
// as in AWS. A repeat with the same value changes nothing; another value is
// ErrTokenReused.
func (s *Store) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	const op = "PutPending"
	if n := len(versionID); n < 32 || n > 64 {
		return storeErr(op, name, secretstore.ErrInvalidRequest, "version id %q has %d characters; AWS wants 32 to 64", versionID, n)
	}
	if value.IsZero() {
		return storeErr(op, name, secretstore.ErrInvalidRequest, "the value is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockExclusive)
	if lockErr != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: lockErr}
	}
	defer release()
	r, err := s.lookup(op, name, false)
	if err != nil {
		return err
	}
	if v := r.version(versionID); v != nil {
		if secret.New(v.Value).Equal(value) {
			return nil
		}
		return storeErr(op, name, secretstore.ErrTokenReused, "version %s already holds another value", versionID)
	}
	before := s.snapshot()
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
	return s.commit(op, name, before)
}

// MoveStage moves stage to toVersionID from fromVersionID, with AWS's
// checks: fromVersionID must hold the stage, and when another version holds
// it, fromVersionID must name it (ErrInvalidRequest otherwise: the caller
// raced another writer). Moving AWSCURRENT puts AWSPREVIOUS on the version
// that lost it. An empty toVersionID only removes the stage.
func (s *Store) MoveStage(ctx context.Context, name, stage, toVersionID, fromVersionID string) error {
	const op = "MoveStage"
	if stage == "" || (toVersionID == "" && fromVersionID == "") {
		return storeErr(op, name, secretstore.ErrInvalidRequest, "need a stage and a version to move it to or from")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockExclusive)
	if lockErr != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: lockErr}
	}
	defer release()
	r, err := s.lookup(op, name, false)
	if err != nil {
		return err
	}
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
	before := s.snapshot()
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
	return s.commit(op, name, before)
}

// List calls fn for every secret not scheduled for deletion that passes
// all filters, in name order. fn runs without the lock held, so it may
// call the store.
func (s *Store) List(ctx context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	s.mu.Lock()
	release, err := s.acquire(lockShared)
	if err != nil {
		s.mu.Unlock()
		return &secretstore.Error{Op: "List", Err: err}
	}
	var out []secretstore.Secret
	for _, r := range s.data.Secrets {
		if r.DeletedAt == nil && r.matches(filters) {
			out = append(out, r.meta())
		}
	}
	release()
	s.mu.Unlock()
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

func (r *record) matches(filters []secretstore.TagFilter) bool {
	for _, f := range filters {
		v, ok := r.Tags[f.Key]
		if !ok || (len(f.Values) > 0 && !slices.Contains(f.Values, v)) {
			return false
		}
	}
	return true
}

// Tag sets tags on the secret.
func (s *Store) Tag(ctx context.Context, name string, tags map[string]string) error {
	const op = "Tag"
	s.mu.Lock()
	defer s.mu.Unlock()
	release, lockErr := s.acquire(lockExclusive)
	if lockErr != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: lockErr}
	}
	defer release()
	r, err := s.lookup(op, name, false)
	if err != nil {
		return err
	}
	before := s.snapshot()
	for k, v := range tags {
		r.Tags[k] = v
	}
	return s.commit(op, name, before)
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
