package localstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
)

func harness(s *Store) storetest.Harness {
	return storetest.Harness{
		Store: s,
		Create: func(ctx context.Context, name, description string, tags map[string]string, initial *secret.Value) error {
			_, err := s.Create(ctx, name, description, tags, initial)
			return err
		},
		ScheduleDeletion: s.ScheduleDeletion,
	}
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, err := Open("")
		if err != nil {
			t.Fatal(err)
		}
		return harness(s)
	})
}

func TestConformanceOnDisk(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s, err := Open(filepath.Join(t.TempDir(), "secrets.json"))
		if err != nil {
			t.Fatal(err)
		}
		return harness(s)
	})
}

const versionA = "0123456789abcdef0123456789abcdef"

func TestPersistsAcrossReopenWithMode0600(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "secrets.json")
	fake := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := Open(path, WithClock(fake))
	if err != nil {
		t.Fatal(err)
	}
	initial := secret.New("initial-value-kept-on-disk")
	created, err := s.Create(ctx, "demo/api-key", "demo key", map[string]string{"team": "payments"}, &initial)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.ARN, "arn:local:secretsmanager:local:000000000000:secret:demo/api-key-") || len(created.ARN) != len("arn:local:secretsmanager:local:000000000000:secret:demo/api-key-")+6 {
		t.Errorf("ARN = %q, want arn:local:...:secret:demo/api-key-xxxxxx", created.ARN)
	}
	fake.Advance(time.Hour)
	if err := s.PutPending(ctx, "demo/api-key", versionA, secret.New("pending-value-kept-on-disk")); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %#o, want 0600", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"secrets.json", "secrets.json.lock"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("directory holds %v, want only the store file and its lock file %v (no temporary files left)", names, want)
	}
	if li, err := os.Stat(path + ".lock"); err != nil || li.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v, mode %v; want 0600", err, li)
	}

	reopened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := reopened.Get(ctx, created.ARN, secretstore.ByStage(secretstore.StagePending))
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != versionA || v.Value.Reveal() != "pending-value-kept-on-disk" || !v.CreatedAt.Equal(fake.Now()) {
		t.Errorf("after reopen: pending = %s created %v, want %s created %v", v.ID, v.CreatedAt, versionA, fake.Now())
	}
	sec, err := reopened.Describe(ctx, "demo/api-key")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Tags["team"] != "payments" || sec.Description != "demo key" || len(sec.Versions) != 2 {
		t.Errorf("after reopen: %+v", sec)
	}
}

func TestRefusesWiderPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(path, []byte(`{"format_version":1,"secrets":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("Open of a 0644 file = %v, want an error naming the file and its mode", err)
	}
}

func TestRefusesMalformedFileWithoutQuotingIt(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"syntax", "{\"format_version\":1,\n\"secrets\": {\"x\": {\"value\": \"leaky-secret-123\" ", "line 2"},
		{"type", "{\"format_version\":1,\n\"secrets\":{\"x\":{\"name\":\"x\",\"versions\":[{\"id\":\"a\",\"value\":42}]}}}", "line 2"},
		{"unknown field", `{"format_version":1,"secrets":{},"leaky-secret-123":1}`, "malformed"},
		{"format", `{"format_version":7,"secrets":{}}`, "format_version"},
		{"name mismatch", `{"format_version":1,"secrets":{"x":{"name":"y","versions":[]}}}`, `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secrets.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if err == nil {
				t.Fatal("Open of a malformed file succeeded")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the file and %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "leaky-secret-123") {
				t.Errorf("error %q quotes the file's content", err)
			}
		})
	}
}

func TestFailedSaveLeavesStateUnchanged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	// A read-only directory makes the next save fail.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if f, err := os.CreateTemp(dir, "probe"); err == nil {
		f.Close()
		t.Skip("running as a user who can write to a read-only directory")
	}
	err = s.PutPending(ctx, "a", versionA, secret.New("value-that-was-not-saved"))
	if err == nil {
		t.Fatal("PutPending succeeded although the file could not be written")
	}
	if strings.Contains(err.Error(), "value-that-was-not-saved") {
		t.Errorf("error %q holds the value", err)
	}
	sec, err := s.Describe(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.Versions) != 0 {
		t.Errorf("versions after a failed save = %+v, want none", sec.Versions)
	}
}

func TestScheduleDeletionAndCreateErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := Open("")
	if _, err := s.Create(ctx, "a", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a", "", nil, nil); !errors.Is(err, secretstore.ErrInvalidRequest) {
		t.Errorf("second Create of a = %v, want ErrInvalidRequest", err)
	}
	if err := s.ScheduleDeletion(ctx, "nope"); !errors.Is(err, secretstore.ErrNotFound) {
		t.Errorf("ScheduleDeletion of a missing secret = %v, want ErrNotFound", err)
	}
	if err := s.Tag(ctx, "a", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScheduleDeletion(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "a", map[string]string{"k": "w"}); !errors.Is(err, secretstore.ErrScheduledForDeletion) {
		t.Errorf("Tag of a deleted secret = %v, want ErrScheduledForDeletion", err)
	}
}
