package lakisimtest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// recordingTB keeps Errorf calls instead of failing, to test the fixture's
// contract check itself.
type recordingTB struct {
	*testing.T
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

func do(t *testing.T, f *lakisimtest.Fixture, method, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.SandboxKey.Reveal())
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestFixtureSeedsAMerchantAndManagementKeys(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithTLS())
	if !strings.HasPrefix(f.SandboxURL, "https://") || !strings.HasSuffix(f.SandboxURL, "/sandbox/v1") || !strings.HasSuffix(f.ProductionURL, "/production/v1") {
		t.Fatalf("urls %s %s", f.SandboxURL, f.ProductionURL)
	}
	if !f.Clock.Now().Equal(lakisimtest.Epoch()) {
		t.Fatalf("clock starts at %v", f.Clock.Now())
	}
	for _, env := range []laki.Environment{laki.Sandbox, laki.Production} {
		keys := f.Sim.Keys(env, f.MasterMerchantID)
		if len(keys) != 1 || len(keys[0].Scopes) != len(laki.AllScopes) || keys[0].SecretLast4 != f.Key(env).Last4() {
			t.Fatalf("%s keys = %+v", env, keys)
		}
	}
	if do(t, f, "GET", f.SandboxURL+"/whoami", "") != 200 {
		t.Fatal("whoami over TLS failed")
	}
}

func TestFixtureReportsContractViolations(t *testing.T) {
	rec := &recordingTB{T: t}
	f := lakisimtest.Start(rec)
	// The request breaks the document (empty name); the simulator refuses it.
	if code := do(t, f, "POST", f.SandboxURL+"/api_keys", `{"name":"","scopes":["payments:read"]}`); code != 400 {
		t.Fatalf("status %d", code)
	}
	got := rec.got()
	if len(got) != 1 || !strings.Contains(got[0], "createApiKey") || !strings.Contains(got[0], "request") {
		t.Fatalf("reported %q", got)
	}

	quiet := &recordingTB{T: t}
	f = lakisimtest.Start(quiet, lakisimtest.WithResponseContractOnly())
	do(t, f, "POST", f.SandboxURL+"/api_keys", `{"name":"","scopes":["payments:read"]}`)
	off := &recordingTB{T: t}
	g := lakisimtest.Start(off, lakisimtest.WithoutContractCheck())
	do(t, g, "GET", g.SandboxURL+"/nowhere", "")
	if len(quiet.got())+len(off.got()) != 0 {
		t.Fatalf("checks that were turned off reported %q %q", quiet.got(), off.got())
	}
}
