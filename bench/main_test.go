package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
)

// A saved JSON report prints as the same table the run printed.
func TestRenderPrintsASavedReport(t *testing.T) {
	rep := Report{Date: time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC), N: 1000, Quota: QuotaAWS, WriteQuota: 50, QuotaBoundPerSec: 25,
		Rotated: 1000, RotationsPerSec: 23.5, FractionOfBound: 0.94, SMCallsPerRot: 3, SMWritesPerRot: 2,
		SMCalls: map[string]int{"GetSecretValue": 1000, "PutSecretValue": 1000, "UpdateSecretVersionStage": 1000}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"-render", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var want bytes.Buffer
	if err := rep.WriteTable(&want); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Fatalf("rendered:\n%s\nwant:\n%s", out.String(), want.String())
	}
	for _, s := range []string{"23.50", "0.940", ">= 0.9: met", "PutSecretValue", "1000 (1.000/rotation"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}

func TestMainRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "-nope"},
		{[]string{"-render", bad}, 1, "bad.json is not a lakibench JSON report"},
		{[]string{"-render", filepath.Join(dir, "missing.json")}, 1, "missing.json"},
		{[]string{"-n", "2", "-endpoint", "http://127.0.0.1:1"}, 1, "n is 2"},
		{[]string{"-idle-serve", "-serve-binary", filepath.Join(dir, "no-such-binary"), "-endpoint", "http://127.0.0.1:1"}, 2, "no-such-binary"},
	} {
		var out, errOut bytes.Buffer
		code := Main(c.args, &out, &errOut)
		if code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("Main(%q) = %d, stderr %q; want %d naming %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
}

// Jobs in name order come in runs of one merchant; spread, consecutive jobs
// use different management keys, and none is lost or doubled.
func TestSpreadByMerchantInterleaves(t *testing.T) {
	var jobs []rotator.Job
	for i := range 7 {
		m := "mm_A"
		if i >= 4 {
			m = "mm_B"
		}
		jobs = append(jobs, rotator.Job{Secret: inventory.ManagedSecret{Name: fmt.Sprint(i), Environment: laki.Sandbox, MasterMerchantID: m}})
	}
	var got []string
	for _, j := range spreadByMerchant(jobs) {
		got = append(got, j.Secret.MasterMerchantID+":"+j.Secret.Name)
	}
	want := []string{"mm_A:0", "mm_B:4", "mm_A:1", "mm_B:5", "mm_A:2", "mm_B:6", "mm_A:3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("spread = %v, want %v", got, want)
	}
}
