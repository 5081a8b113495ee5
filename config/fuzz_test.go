package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse checks that Parse never panics, that every refusal is a
// *ValidationError whose problems all have a position, and that every
// accepted config validates again and survives a write and re-read unchanged.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, "example.yaml") {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("refusal is not a ValidationError with problems: %T %v", err, err)
			}
			for _, p := range ve.Problems {
				if p.Line < 1 || p.Column < 1 || p.Message == "" {
					t.Fatalf("problem without position or message: %+v", p)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		again, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("written config does not read back: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Fatalf("config changed on a write and re-read:\n%s\n---\n%s", out, out2)
		}
	})
}
