package openapi

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The embedded copy must not drift from the design docs' original, when the
// docs are checked out beside the repository.
func TestSpecMatchesSharedOriginal(t *testing.T) {
	original, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "lakiconnect", "openapi.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("shared design docs not checked out beside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Spec(), original) {
		t.Fatal("providers/lakiconnect/openapi/openapi.yaml differs from shared/lakiconnect/openapi.yaml: copy the original again")
	}
}

func TestSpecLoadsAndValidates(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(Spec())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if doc.Paths.Find("/api_keys/{key_id}/expire") == nil {
		t.Fatal("spec has no /api_keys/{key_id}/expire path")
	}
}

func TestSpecReturnsACopy(t *testing.T) {
	a := Spec()
	a[0] = 'X'
	if Spec()[0] == 'X' {
		t.Fatal("Spec exposes the embedded bytes")
	}
}
