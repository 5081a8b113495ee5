package consumer_test

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lakirotator/lakirotator/"

// The consumer package runs in other teams' applications: it may depend on
// the stored-format definitions and the signature header parser (and their
// own leaves), never on the daemon, the engine or the LakiConnect client.
var consumerMayImport = []string{
	"internal/clock",
	"internal/secret",
	"providers/lakiconnect/webhooksig",
	"providers/secretstore",
}

func TestConsumerImportsNoDaemonPackage(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(pkg string)
	walk = func(pkg string) {
		p, err := build.Import(module+pkg, root, 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, imp := range p.Imports {
			rel, ok := strings.CutPrefix(imp, module)
			if !ok || seen[rel] {
				continue
			}
			seen[rel] = true
			if !slices.Contains(consumerMayImport, rel) {
				t.Errorf("consumer depends on %s (through %s): only %v are allowed", rel, pkg, consumerMayImport)
				continue
			}
			walk(rel)
		}
	}
	walk("consumer")
	if len(seen) == 0 {
		t.Fatal("found no imports of the module at all: the walk is broken")
	}
}
