package vaultstore

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// recordFormat is the version of the stage record layout; others are refused.
const recordFormat = 1

// Keys of a version's data.
const (
	dataRecord    = "lakirotator" // the stage record
	dataVersionID = "version_id"  // the engine's version id (credential versions)
	dataValue     = "value"       // the secret value (credential versions)
)

// Keys of the custom metadata the store reserves; tags never use them.
const (
	reservedPrefix  = "lakirotator-"
	metaDescription = "lakirotator-description"
	metaCurrent     = "lakirotator-current"
	metaPending     = "lakirotator-pending"
	metaPrevious    = "lakirotator-previous"
	metaRecord      = "lakirotator-record"
)

// record is the stage record, kept in the data of the latest KV version.
type record struct {
	Format int `json:"format"`
	// Versions maps the KV version of each credential version to its
	// version id.
	Versions map[int]string `json:"versions"`
	// Stages maps a stage to the KV version holding it.
	Stages map[string]int `json:"stages"`
}

func newRecord() record {
	return record{Format: recordFormat, Versions: map[int]string{}, Stages: map[string]int{}}
}

func (r record) clone() record {
	c := newRecord()
	for k, v := range r.Versions {
		c.Versions[k] = v
	}
	for k, v := range r.Stages {
		c.Stages[k] = v
	}
	return c
}

// kvOf returns the KV version holding the version id.
func (r record) kvOf(id string) (int, bool) {
	for kv, v := range r.Versions {
		if v == id {
			return kv, true
		}
	}
	return 0, false
}

// stagesOf lists the stages on a KV version, sorted.
func (r record) stagesOf(kv int) []string {
	var out []string
	for st, v := range r.Stages {
		if v == kv {
			out = append(out, st)
		}
	}
	sort.Strings(out)
	return out
}

// adopt applies a version written without a record (by hand): it becomes
// AWSCURRENT, and the version that held AWSCURRENT becomes AWSPREVIOUS, as
// a PutSecretValue without stages does on AWS.
func (r *record) adopt(kv int) {
	r.Versions[kv] = adoptedID(kv)
	if cur, ok := r.Stages[secretstore.StageCurrent]; ok && cur != kv {
		r.Stages[secretstore.StagePrevious] = cur
	}
	r.Stages[secretstore.StageCurrent] = kv
}

func adoptedID(kv int) string { return "kv-" + strconv.Itoa(kv) }

// keepOnly drops versions Vault no longer has (max_versions, metadata
// deletes) and the stages on them.
func (r *record) keepOnly(exists func(kv int) bool) {
	for kv := range r.Versions {
		if !exists(kv) {
			delete(r.Versions, kv)
		}
	}
	for st, kv := range r.Stages {
		if _, ok := r.Versions[kv]; !ok {
			delete(r.Stages, st)
		}
	}
}

// encode renders the record as a data field value.
func (r record) encode() map[string]any {
	b, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// decodeRecord reads the record from a version's data; ok is false when
// the version has none.
func decodeRecord(data map[string]any) (record, bool, error) {
	raw, ok := data[dataRecord]
	if !ok || raw == nil {
		return record{}, false, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return record{}, false, err
	}
	r := newRecord()
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, false, fmt.Errorf("field %q is not a stage record", dataRecord)
	}
	if r.Format != recordFormat {
		return record{}, false, fmt.Errorf("field %q: format %d is not a known format (want %d)", dataRecord, r.Format, recordFormat)
	}
	if r.Versions == nil {
		r.Versions = map[int]string{}
	}
	if r.Stages == nil {
		r.Stages = map[string]int{}
	}
	return r, true, nil
}

// view is the copy of the record kept in custom metadata for people and
// consumers, as of KV version at.
func (r record) view(at int) map[string]any {
	// Custom metadata values cannot be empty: a stage no version holds is
	// null, which the merge patch turns into "no such key".
	num := func(stage string) any {
		if kv, ok := r.Stages[stage]; ok {
			return strconv.Itoa(kv)
		}
		return nil
	}
	return map[string]any{
		metaCurrent:  num(secretstore.StageCurrent),
		metaPending:  num(secretstore.StagePending),
		metaPrevious: num(secretstore.StagePrevious),
		metaRecord:   strconv.Itoa(at),
	}
}

// kvVersion is what the metadata says about one KV version.
type kvVersion struct {
	Created   time.Time
	DeletedAt *time.Time
	Destroyed bool
}

// metadata is a secret's KV v2 metadata.
type metadata struct {
	Current  int
	Updated  time.Time
	Created  time.Time
	Custom   map[string]string
	Versions map[int]kvVersion
}

func parseMetadata(data map[string]any) (metadata, error) {
	m := metadata{Custom: map[string]string{}, Versions: map[int]kvVersion{}}
	var err error
	if m.Current, err = intField(data, "current_version"); err != nil {
		return m, err
	}
	m.Updated = timeField(data, "updated_time")
	m.Created = timeField(data, "created_time")
	if cm, ok := data["custom_metadata"].(map[string]any); ok {
		for k, v := range cm {
			if s, ok := v.(string); ok {
				m.Custom[k] = s
			}
		}
	}
	vs, _ := data["versions"].(map[string]any)
	for k, raw := range vs {
		n, err := strconv.Atoi(k)
		if err != nil {
			return m, fmt.Errorf("metadata: version key %q is not a number", k)
		}
		v, _ := raw.(map[string]any)
		m.Versions[n] = versionOf(v)
	}
	return m, nil
}

func versionOf(v map[string]any) kvVersion {
	out := kvVersion{Created: timeField(v, "created_time")}
	if d := timeField(v, "deletion_time"); !d.IsZero() {
		out.DeletedAt = &d
	}
	out.Destroyed, _ = v["destroyed"].(bool)
	return out
}

func intField(data map[string]any, key string) (int, error) {
	switch v := data[key].(type) {
	case json.Number:
		n, err := v.Int64()
		return int(n), err
	case float64:
		return int(v), nil
	case nil:
		return 0, nil
	default:
		return 0, fmt.Errorf("metadata: %s is %T, not a number", key, v)
	}
}

func timeField(data map[string]any, key string) time.Time {
	s, _ := data[key].(string)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
