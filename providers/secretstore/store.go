// Package secretstore is the seam between the rotator and wherever its
// secrets live: AWS Secrets Manager in production (package
// providers/secretsmanager), a local file for the demo (providers/localstore).
// Both give the same semantics: versions, staging labels, idempotent writes by
// client request token, tags. The conformance suite in storetest holds them to it.
package secretstore

import (
	"context"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// The staging labels of AWS's rotation protocol.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// VersionInfo is a version's id and labels, without its value.
type VersionInfo struct {
	ID        string
	Stages    []string
	CreatedAt time.Time
}

// Has reports whether the version carries the stage label.
func (v VersionInfo) Has(stage string) bool {
	for _, s := range v.Stages {
		if s == stage {
			return true
		}
	}
	return false
}

// Secret is a secret's metadata as a listing returns it: no value.
type Secret struct {
	Name        string
	ARN         string
	Description string
	Tags        map[string]string
	Versions    []VersionInfo
	// DeletedAt is set when the secret is scheduled for deletion.
	DeletedAt     *time.Time
	LastChangedAt time.Time
}

// VersionWithStage returns the version that carries stage, if any.
func (s Secret) VersionWithStage(stage string) (VersionInfo, bool) {
	for _, v := range s.Versions {
		if v.Has(stage) {
			return v, true
		}
	}
	return VersionInfo{}, false
}

// Version returns the version with the id, if the secret has it.
func (s Secret) Version(id string) (VersionInfo, bool) {
	for _, v := range s.Versions {
		if v.ID == id {
			return v, true
		}
	}
	return VersionInfo{}, false
}

// Version is one version of a secret with its value.
type Version struct {
	SecretName string
	ARN        string
	ID         string
	Stages     []string
	Value      secret.Value
	CreatedAt  time.Time
}

// Selector picks one version: by id when VersionID is set, else by Stage.
type Selector struct {
	VersionID string
	Stage     string
}

// ByStage selects the version carrying stage.
func ByStage(stage string) Selector { return Selector{Stage: stage} }

// ByID selects the version with the id.
func ByID(id string) Selector { return Selector{VersionID: id} }

// TagFilter keeps secrets that have a tag Key (and, when Values is not empty,
// one of the Values). Several filters must all hold.
type TagFilter struct {
	Key    string
	Values []string
}

// Store is a store of versioned secrets with staging labels. Every error it
// returns is an *Error naming the operation and the secret; errors.Is against
// the Err* kinds below tells callers what went wrong.
type Store interface {
	// Get reads one version's value.
	Get(ctx context.Context, name string, sel Selector) (Version, error)
	// Describe returns the secret's metadata, tags and versions with their stages.
	Describe(ctx context.Context, name string) (Secret, error)
	// PutPending writes a new version with ClientRequestToken = versionID and
	// the stage AWSPENDING (moving AWSPENDING off any other version).
	// Repeating it with the same id and value succeeds and changes nothing;
	// the same id with another value is ErrTokenReused.
	PutPending(ctx context.Context, name, versionID string, value secret.Value) error
	// MoveStage puts stage on toVersionID and removes it from fromVersionID
	// (empty when no version holds it). Moving AWSCURRENT puts AWSPREVIOUS on
	// the version that lost it.
	MoveStage(ctx context.Context, name, stage, toVersionID, fromVersionID string) error
	// List calls fn for every secret that passes all filters, scheduled
	// deletions excluded, page by page. fn's error stops the listing and is returned.
	List(ctx context.Context, filters []TagFilter, fn func(Secret) error) error
	// Tag sets tags on the secret (lifecycle bookkeeping: failures, attempts).
	Tag(ctx context.Context, name string, tags map[string]string) error
}
