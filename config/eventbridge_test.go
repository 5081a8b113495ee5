package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestEventBridgeSection(t *testing.T) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := WithKnownPolicies(func(name string) bool { return slices.Contains(examplePolicies, name) })
	with := func(block string) []byte {
		// The first environment of the example is sandbox.
		return []byte(strings.Replace(string(example), "    lakiconnect:\n", block+"    lakiconnect:\n", 1))
	}
	cfg, err := Parse("c.yaml", with("    eventbridge:\n      bus: lakirotator-sandbox-consumers\n      attempts: 4\n"), known)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := cfg.Environment("sandbox")
	if sb.EventBridge == nil || sb.EventBridge.Bus != "lakirotator-sandbox-consumers" || sb.EventBridge.Attempts != 4 {
		t.Fatalf("eventbridge: %+v", sb.EventBridge)
	}
	if pr, _ := cfg.Environment("production"); pr.EventBridge != nil {
		t.Fatal("production has an eventbridge section it was not given")
	}
	for _, tc := range []struct{ block, want string }{
		{"    eventbridge:\n      attempts: 3\n", "environments.sandbox.eventbridge.bus: required"},
		{"    eventbridge:\n      bus: b\n      attempts: 99\n", "environments.sandbox.eventbridge.attempts"},
		{"    eventbridge:\n      bus: b\n      topic: x\n", "topic"},
	} {
		_, err := Parse("c.yaml", with(tc.block), known)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml:") {
			t.Errorf("%q: %v; want an error at c.yaml naming %q", tc.block, err, tc.want)
		}
	}
}
