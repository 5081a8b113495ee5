package secretsmanager

// The store's operations, each one Secrets Manager call with the error
// translation it needs, so the call budget of a rotation can be read off
// this file (List's paging is in list.go).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// API is the part of the Secrets Manager client the store calls: exactly
// the operations of Operations(), with the SDK's signatures, so that the
// real client and wrappers or fakes all satisfy it.
type API interface {
	DescribeSecret(ctx context.Context, params *sm.DescribeSecretInput, optFns ...func(*sm.Options)) (*sm.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, params *sm.GetSecretValueInput, optFns ...func(*sm.Options)) (*sm.GetSecretValueOutput, error)
	ListSecrets(ctx context.Context, params *sm.ListSecretsInput, optFns ...func(*sm.Options)) (*sm.ListSecretsOutput, error)
	PutSecretValue(ctx context.Context, params *sm.PutSecretValueInput, optFns ...func(*sm.Options)) (*sm.PutSecretValueOutput, error)
	TagResource(ctx context.Context, params *sm.TagResourceInput, optFns ...func(*sm.Options)) (*sm.TagResourceOutput, error)
	UpdateSecretVersionStage(ctx context.Context, params *sm.UpdateSecretVersionStageInput, optFns ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error)
}

var (
	_ API                     = (*sm.Client)(nil)
	_ secretstore.Store       = (*Store)(nil)
	_ sm.ListSecretsAPIClient = API(nil)
)

// Store is the Secrets Manager implementation of secretstore.Store. Safe
// for concurrent use.
type Store struct {
	api   API
	read  *lane
	write *lane
	quota QuotaKey
}

func (s *Store) wait(ctx context.Context, l *lane, op, name string) error {
	if err := l.wait(ctx); err != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: fmt.Errorf("waiting for the client-side rate limit: %w", err)}
	}
	return nil
}

// Get reads one version's value, by id when the selector has one, else by
// stage (AWSCURRENT when neither is set, as AWS does).
func (s *Store) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	return s.get(ctx, "Get", name, sel)
}

func (s *Store) get(ctx context.Context, op, name string, sel secretstore.Selector) (secretstore.Version, error) {
	if err := s.wait(ctx, s.read, op, name); err != nil {
		return secretstore.Version{}, err
	}
	in := &sm.GetSecretValueInput{SecretId: aws.String(name)}
	if sel.VersionID != "" {
		in.VersionId = aws.String(sel.VersionID)
	}
	if sel.Stage != "" {
		in.VersionStage = aws.String(sel.Stage)
	}
	out, err := s.api.GetSecretValue(ctx, in)
	if err != nil {
		return secretstore.Version{}, mapError(op, name, err)
	}
	if out.SecretString == nil {
		return secretstore.Version{}, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue,
			Err: fmt.Errorf("version %s holds binary data, not a string", aws.ToString(out.VersionId))}
	}
	return secretstore.Version{
		SecretName: aws.ToString(out.Name),
		ARN:        aws.ToString(out.ARN),
		ID:         aws.ToString(out.VersionId),
		Stages:     out.VersionStages,
		Value:      secret.New(*out.SecretString),
		CreatedAt:  aws.ToTime(out.CreatedDate),
	}, nil
}

// Describe returns the secret's metadata and its versions' stages. The
// versions' CreatedAt is zero: DescribeSecret does not return it.
func (s *Store) Describe(ctx context.Context, name string) (secretstore.Secret, error) {
	const op = "Describe"
	if err := s.wait(ctx, s.read, op, name); err != nil {
		return secretstore.Secret{}, err
	}
	out, err := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return secretstore.Secret{}, mapError(op, name, err)
	}
	return toSecret(aws.ToString(out.Name), aws.ToString(out.ARN), aws.ToString(out.Description),
		out.Tags, out.VersionIdsToStages, out.DeletedDate, out.LastChangedDate, out.CreatedDate), nil
}

// PutPending writes value as version versionID with the stage AWSPENDING:
// one write, no read. A repeat with the same token and value changes
// nothing; the same token with another value is AWS's
// ResourceExistsException, mapped to ErrTokenReused. moto overwrites instead
// (MOTO.md), so the engine never relies on that refusal: it looks the
// version id up in the listing's versions before it asks LakiConnect for a
// new credential, and a rotation's version id is only ever written with the
// credential made for it.
func (s *Store) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	const op = "PutPending"
	if err := secretstore.CheckPut(name, versionID, value); err != nil {
		return err
	}
	if err := s.wait(ctx, s.write, op, name); err != nil {
		return err
	}
	_, err := s.api.PutSecretValue(ctx, &sm.PutSecretValueInput{
		SecretId:           aws.String(name),
		ClientRequestToken: aws.String(versionID),
		SecretString:       aws.String(value.Reveal()),
		VersionStages:      []string{secretstore.StagePending},
	})
	if err != nil {
		return mapError(op, name, err)
	}
	return nil
}

// MoveStage puts stage on toVersionID and removes it from fromVersionID.
// An empty toVersionID only removes the stage from fromVersionID.
func (s *Store) MoveStage(ctx context.Context, name, stage, toVersionID, fromVersionID string) error {
	const op = "MoveStage"
	if err := secretstore.CheckMove(name, stage, toVersionID, fromVersionID); err != nil {
		return err
	}
	if err := s.wait(ctx, s.write, op, name); err != nil {
		return err
	}
	in := &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(stage)}
	if toVersionID != "" {
		in.MoveToVersionId = aws.String(toVersionID)
	}
	if fromVersionID != "" {
		in.RemoveFromVersionId = aws.String(fromVersionID)
	}
	if _, err := s.api.UpdateSecretVersionStage(ctx, in); err != nil {
		return mapError(op, name, err)
	}
	return nil
}

// Tag sets tags on the secret.
func (s *Store) Tag(ctx context.Context, name string, tags map[string]string) error {
	const op = "Tag"
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	in := &sm.TagResourceInput{SecretId: aws.String(name)}
	for _, k := range keys {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if err := s.wait(ctx, s.write, op, name); err != nil {
		return err
	}
	if _, err := s.api.TagResource(ctx, in); err != nil {
		return mapError(op, name, err)
	}
	return nil
}

// mapError turns an SDK error into a *secretstore.Error of the right kind.
// AWS error messages name resources, never secret values.
func mapError(op, name string, err error) error {
	var se *secretstore.Error
	if errors.As(err, &se) {
		return err
	}
	var kind error
	switch code := ErrorCode(err); code {
	case "ResourceNotFoundException":
		kind = secretstore.ErrNotFound
	case "InvalidRequestException":
		kind = secretstore.ErrInvalidRequest
		if mentionsDeletion(err) {
			kind = secretstore.ErrScheduledForDeletion
		}
	case "ResourceExistsException":
		kind = secretstore.ErrTokenReused
	case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded":
		kind = secretstore.ErrThrottled
	case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "ExpiredTokenException":
		kind = secretstore.ErrAccessDenied
	case "InvalidParameterException", "ValidationException":
		kind = secretstore.ErrInvalidRequest
	}
	return &secretstore.Error{Op: op, Secret: name, Kind: kind, Err: err}
}

func mentionsDeletion(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "deletion") || strings.Contains(m, "deleted")
}
