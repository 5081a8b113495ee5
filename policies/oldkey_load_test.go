package policies

import (
	"strings"
	"testing"
)

func TestLastUsedWarningFraction(t *testing.T) {
	base := "name: p\nkind: api_key\nscopes: [payments:read]\nenvironments: [sandbox]\nmax_age: 30d\nalerts:\n  last_used_warning_fraction: "
	set, err := Load("p.yaml", []byte(base+"0.8\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := set.Get("p"); p.Alerts.LastUsedWarningFraction != 0.8 {
		t.Fatalf("fraction %v, want 0.8", p.Alerts.LastUsedWarningFraction)
	}
	for _, bad := range []string{"1.5", "0", "1", "-0.2", "eighty", "[0.8]"} {
		_, err := Load("p.yaml", []byte(base+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "p.yaml:7:") || !strings.Contains(err.Error(), "alerts.last_used_warning_fraction") {
			t.Errorf("fraction %s: %v; want an error at p.yaml:7 naming alerts.last_used_warning_fraction", bad, err)
		}
	}
}
