package secretsmanager

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// The stages the store writes are the ones AWS's own tooling reads back.
func TestAWSCLISeesTheStagesTheStoreWrote(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("the aws CLI is not on PATH; install it with: pip install awscli")
	}
	ctx := context.Background()
	s, _ := newMotoStore(t)
	name := unique("awscli-check")
	initial := "initial-value-for-cli-check"
	out, err := seedClient(t).CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(initial)})
	if err != nil {
		t.Fatal(err)
	}
	v0 := aws.ToString(out.VersionId)
	v1, v2 := "11111111111111111111111111111111", "22222222222222222222222222222222"
	for _, step := range []func() error{
		func() error { return s.PutPending(ctx, name, v1, secret.New("cli-check-value-one")) },
		func() error { return s.MoveStage(ctx, name, secretstore.StageCurrent, v1, v0) },
		func() error { return s.PutPending(ctx, name, v2, secret.New("cli-check-value-two")) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.CommandContext(ctx, awsCLI, "--endpoint-url", moto.Endpoint(t), "secretsmanager", "list-secret-version-ids",
		"--secret-id", name, "--region", motoserver.Region, "--output", "json")
	cmd.Env = motoserver.Env()
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws secretsmanager list-secret-version-ids: %v\n%s", err, raw)
	}
	for _, v := range []string{initial, "cli-check-value-one", "cli-check-value-two"} {
		if strings.Contains(string(raw), v) {
			t.Errorf("list-secret-version-ids printed a secret value")
		}
	}
	var listing struct {
		Versions []struct {
			VersionId     string
			VersionStages []string
		}
	}
	if err := json.Unmarshal(raw, &listing); err != nil {
		t.Fatalf("aws CLI output is not JSON: %v\n%s", err, raw)
	}
	got := map[string]string{}
	for _, v := range listing.Versions {
		st := slices.Clone(v.VersionStages)
		sort.Strings(st)
		got[v.VersionId] = strings.Join(st, ",")
	}
	want := map[string]string{v0: "AWSPREVIOUS", v1: "AWSCURRENT", v2: "AWSPENDING"}
	if len(got) != len(want) {
		t.Fatalf("aws CLI lists versions %v, want %v", got, want)
	}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("aws CLI: version %s has stages %q, want %q (all: %v)", id, got[id], st, got)
		}
	}
}
