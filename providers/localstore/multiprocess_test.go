package localstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// writerEnv makes the test binary, re-executed, a writer process: it adds
// versions and tags to one secret of the store file, then exits.
const writerEnv = "LOCALSTORE_TEST_WRITER" // PATH|SECRET|COUNT

func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		if err := runWriter(spec); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runWriter(spec string) error {
	var path, name string
	var count int
	if _, err := fmt.Sscanf(spec, "%s %s %d", &path, &name, &count); err != nil {
		return err
	}
	ctx := context.Background()
	s, err := Open(path)
	if err != nil {
		return err
	}
	for i := range count {
		id := fmt.Sprintf("%08d-%s-%020d", i, name, i)
		if err := s.PutPending(ctx, name, id, secret.New("value "+id)); err != nil {
			return err
		}
		if err := s.Tag(ctx, name, map[string]string{"n" + strconv.Itoa(i): "x"}); err != nil {
			return err
		}
	}
	return nil
}

// Two processes writing one store file at the same time lose nothing: each
// takes the file's lock and reads the other's writes before its own.
func TestTwoProcessesWritingOneFileLoseNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alpha", "bravo"} {
		if _, err := s.Create(ctx, name, "", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	const perProcess = 40
	var wg sync.WaitGroup
	for _, name := range []string{"alpha", "bravo"} {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", writerEnv, path, name, perProcess))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("writer %s: %v\n%s", name, err, out)
			}
		})
	}
	wg.Wait()

	// This Store has been open all along, as the daemon's is: it must see
	// what the other processes wrote, and its next write must keep it.
	if _, err := s.Create(ctx, "charlie", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, reopened} {
		for _, name := range []string{"alpha", "bravo"} {
			sec, err := st.Describe(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if len(sec.Versions) != perProcess || len(sec.Tags) != perProcess {
				t.Errorf("%s has %d versions and %d tags, want %d of each: writes were lost", name, len(sec.Versions), len(sec.Tags), perProcess)
			}
			last := fmt.Sprintf("%08d-%s-%020d", perProcess-1, name, perProcess-1)
			if v, err := st.Get(ctx, name, secretstore.Selector{Stage: secretstore.StagePending}); err != nil || v.ID != last {
				t.Errorf("%s: AWSPENDING on %q (%v), want the last version %s", name, v.ID, err, last)
			}
		}
		if _, err := st.Describe(ctx, "charlie"); err != nil {
			t.Errorf("charlie: %v", err)
		}
	}
}
