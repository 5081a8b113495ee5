package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsimple"
	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/vaultserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
)

// policyMount is the KV v2 mount the policy file is written for.
const policyMount = "lakirotator"

type policyFile struct {
	Paths []policyPath `hcl:"path,block"`
}

type policyPath struct {
	Path         string   `hcl:"path,label"`
	Capabilities []string `hcl:"capabilities"`
}

func readPolicy(t *testing.T) (string, policyFile) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	file := filepath.Join(filepath.Dir(here), "..", "..", filepath.FromSlash(PolicyFile))
	var p policyFile
	if err := hclsimple.DecodeFile(file, nil, &p); err != nil {
		t.Fatalf("%s: %v", PolicyFile, err)
	}
	if len(p.Paths) == 0 {
		t.Fatalf("%s has no path blocks", PolicyFile)
	}
	return file, p
}

func (p policyFile) render() string {
	var b strings.Builder
	for _, r := range p.Paths {
		if len(r.Capabilities) == 0 {
			continue
		}
		fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", r.Path, quoteAll(r.Capabilities))
	}
	return b.String()
}

func quoteAll(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

var mountPolicyOnce sync.Once

// policyServer is the shared devvault with the policy file's mount enabled.
func policyServer(t *testing.T) (*vaultserver.Server, *api.Client) {
	t.Helper()
	srv := vault.Server(t)
	admin := srv.Client(t)
	var err error
	mountPolicyOnce.Do(func() { err = vaultserver.MountKVv2(admin, policyMount) })
	if err != nil {
		t.Fatalf("mount %s/: %v", policyMount, err)
	}
	return srv, admin
}

// workload is every kind of call the engine makes, on a fresh secret.
func workload(ctx context.Context, s *Store, admin *api.Client, name string) error {
	tag := "policy-check-" + name[strings.LastIndex(name, "-")+1:]
	initial := secret.New("initial-" + name)
	if err := vaultserver.Create(ctx, admin, policyMount, name, "policy check", map[string]string{tag: "yes"}, &initial); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	found := 0
	if err := s.List(ctx, []secretstore.TagFilter{{Key: tag}}, func(secretstore.Secret) error { found++; return nil }); err != nil {
		return err
	}
	if found != 1 {
		return fmt.Errorf("List found %d secrets, want 1", found)
	}
	sec, err := s.Describe(ctx, name)
	if err != nil {
		return err
	}
	cur, _ := sec.VersionWithStage(secretstore.StageCurrent)
	if _, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent)); err != nil {
		return err
	}
	id := strings.Repeat("a", 24) + tag[len(tag)-8:]
	if err := s.PutPending(ctx, name, id, secret.New("next-"+name)); err != nil {
		return err
	}
	if err := s.MoveStage(ctx, name, secretstore.StageCurrent, id, cur.ID); err != nil {
		return err
	}
	return s.Tag(ctx, name, map[string]string{"lakirotator:failed-attempts": "0"})
}

var workloadSeq struct {
	sync.Mutex
	n int
}

func workloadName(label string) string {
	workloadSeq.Lock()
	defer workloadSeq.Unlock()
	workloadSeq.n++
	return fmt.Sprintf("policy/%s-%08x", label, workloadSeq.n)
}

// The policy file holds exactly what the store uses: with it the whole
// conformance suite and the engine's calls pass; without any one of its
// capabilities some call fails with ErrAccessDenied naming that capability
// and the path, which is how an operator with a too-narrow policy finds out.
func TestPolicyFileIsExactlyWhatTheStoreUses(t *testing.T) {
	ctx := context.Background()
	srv, admin := policyServer(t)
	file, policy := readPolicy(t)

	full, err := vaultserver.PolicyToken(ctx, admin, "lakirotator-full", policy.render())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("enough", func(t *testing.T) {
		s := tokenStore(t, srv, policyMount, full, "policy")
		if err := workload(ctx, s, admin, workloadName("enough")); err != nil {
			t.Fatalf("with %s: %v", file, err)
		}
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			return seedHarness(tokenStore(t, srv, policyMount, full, "storetest"), admin, policyMount)
		})
	})

	for i, rule := range policy.Paths {
		for _, capability := range rule.Capabilities {
			t.Run("without "+capability+" on "+rule.Path, func(t *testing.T) {
				narrow := policyFile{Paths: slices.Clone(policy.Paths)}
				narrow.Paths[i].Capabilities = slices.DeleteFunc(slices.Clone(rule.Capabilities), func(c string) bool { return c == capability })
				name := fmt.Sprintf("lakirotator-without-%d-%s", i, capability)
				token, err := vaultserver.PolicyToken(ctx, admin, name, narrow.render())
				if err != nil {
					t.Fatal(err)
				}
				s := tokenStore(t, srv, policyMount, token, "policy")
				err = workload(ctx, s, admin, workloadName("narrow"))
				if !errors.Is(err, secretstore.ErrAccessDenied) {
					t.Fatalf("without %q on %q the store's calls gave %v, want access denied: the capability is not needed", capability, rule.Path, err)
				}
				prefix := strings.TrimSuffix(rule.Path, "*")
				if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", capability)) || !strings.Contains(msg, prefix) || !strings.Contains(msg, PolicyFile) {
					t.Errorf("error %q does not name the capability %q, the path %s and %s", msg, capability, prefix, PolicyFile)
				}
			})
		}
	}
}
