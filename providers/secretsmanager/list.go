package secretsmanager

// Listing: ListSecrets pages, the tag filters sent to the server to narrow
// them and applied again exactly here, and the metadata each entry becomes.

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// listFilterLimit is AWS's limit on filters per ListSecrets call.
const listFilterLimit = 10

// List pages through ListSecrets. The tag filters go to the server to
// narrow the listing (there they are prefix matches), and are applied again
// exactly here: key equal, value one of the values of the same tag.
func (s *Store) List(ctx context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	const op = "List"
	in := &sm.ListSecretsInput{
		IncludePlannedDeletion: aws.Bool(false),
		MaxResults:             aws.Int32(100),
		Filters:                serverFilters(filters),
	}
	pages := sm.NewListSecretsPaginator(s.api, in)
	for pages.HasMorePages() {
		if err := s.wait(ctx, s.read, op, ""); err != nil {
			return err
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return mapError(op, "", err)
		}
		for _, e := range page.SecretList {
			if e.DeletedDate != nil || !matches(e.Tags, filters) {
				continue
			}
			sec := toSecret(aws.ToString(e.Name), aws.ToString(e.ARN), aws.ToString(e.Description),
				e.Tags, e.SecretVersionsToStages, e.DeletedDate, e.LastChangedDate, e.CreatedDate)
			if err := fn(sec); err != nil {
				return err
			}
		}
	}
	return nil
}

func serverFilters(filters []secretstore.TagFilter) []types.Filter {
	var out []types.Filter
	add := func(name types.FilterNameStringType, values []string) {
		var vs []string
		for _, v := range values {
			// A leading "!" negates an AWS filter value; such values are
			// left to the exact check.
			if v != "" && !strings.HasPrefix(v, "!") {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 || len(vs) > 10 || len(out) == listFilterLimit {
			return
		}
		out = append(out, types.Filter{Key: name, Values: vs})
	}
	for _, f := range filters {
		add(types.FilterNameStringTypeTagKey, []string{f.Key})
	}
	for _, f := range filters {
		add(types.FilterNameStringTypeTagValue, f.Values)
	}
	return out
}

func matches(tags []types.Tag, filters []secretstore.TagFilter) bool {
	for _, f := range filters {
		ok := false
		for _, t := range tags {
			if aws.ToString(t.Key) != f.Key {
				continue
			}
			if len(f.Values) == 0 {
				ok = true
			}
			for _, v := range f.Values {
				if aws.ToString(t.Value) == v {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func toSecret(name, arn, description string, tags []types.Tag, stages map[string][]string, deleted, changed, created *time.Time) secretstore.Secret {
	sec := secretstore.Secret{Name: name, ARN: arn, Description: description, Tags: map[string]string{}, DeletedAt: deleted}
	for _, t := range tags {
		sec.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for id, st := range stages {
		sec.Versions = append(sec.Versions, secretstore.VersionInfo{ID: id, Stages: append([]string(nil), st...)})
	}
	sort.Slice(sec.Versions, func(i, j int) bool { return sec.Versions[i].ID < sec.Versions[j].ID })
	switch {
	case changed != nil:
		sec.LastChangedAt = *changed
	case created != nil:
		sec.LastChangedAt = *created
	}
	return sec
}
