package storetest

import (
	"context"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// StoredVersion is one version of a secret as a store holds it.
type StoredVersion struct {
	Secret, ID string
	Value      secret.Value
}

// AllVersions reads every version of every secret in st: the values a test
// scans logs and outputs for.
func AllVersions(t testing.TB, st secretstore.Store) []StoredVersion {
	t.Helper()
	ctx := context.Background()
	var names []string
	if err := st.List(ctx, nil, func(s secretstore.Secret) error { names = append(names, s.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	var out []StoredVersion
	for _, n := range names {
		s, err := st.Describe(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range s.Versions {
			got, err := st.Get(ctx, n, secretstore.ByID(v.ID))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, StoredVersion{Secret: n, ID: v.ID, Value: got.Value})
		}
	}
	return out
}
