package lakisim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

func TestAdminAPIAnswersLoopbackOnly(t *testing.T) {
	sim := lakisim.New(lakisim.Options{})
	t.Cleanup(sim.Close)
	req := httptest.NewRequest("GET", "/_sim/requests", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	rec := httptest.NewRecorder()
	sim.AdminHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("non-loopback client got %d", rec.Code)
	}
}

func TestAdminAPISeedsAndBreaks(t *testing.T) {
	f := lakisimtest.Start(t)
	admin := httptestServer(t, f.Sim.AdminHandler())
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := call("POST", "/_sim/keys", `{"environment":"sandbox","master_merchant_id":"`+f.MasterMerchantID+`","name":"e2e","scopes":["payments:read"]}`)
	if code != 201 || !testKeyPattern.MatchString(out["secret"].(string)) {
		t.Fatalf("create key: %d %v", code, out["id"])
	}
	keyID := out["id"].(string)
	if code, out := call("POST", "/_sim/keys", `{"environment":"sandbox","master_merchant_id":"mm_nope","name":"e2e","scopes":["payments:read"]}`); code != 400 || !strings.Contains(out["error"].(string), "mm_nope") {
		t.Fatalf("unknown merchant: %d %v", code, out)
	}
	if code, out := call("POST", "/_sim/faults", `{"path_prefix":"/whoami","status":500,"latency":"soon"}`); code != 400 || !strings.Contains(out["error"].(string), "latency") {
		t.Fatalf("bad duration: %d %v", code, out)
	}
	if code, _ := call("POST", "/_sim/faults", `{"path_prefix":"/whoami","status":500,"latency":"1ms"}`); code != 201 {
		t.Fatalf("fault: %d", code)
	}
	get(t, f, f.SandboxURL+"/whoami", f.SandboxKey).wantError(t, 500, lakiconnect.ErrTypeAPI, lakiconnect.CodeInternal)
	if code, _ := call("DELETE", "/_sim/faults", ""); code != 200 {
		t.Fatalf("clear: %d", code)
	}
	if code, _ := call("POST", "/_sim/keys/"+keyID+"/revoke", `{"reason":"revoked_by_lakiconnect"}`); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if k, _ := f.Sim.Key(keyID); k.Status != laki.StatusRevoked {
		t.Fatalf("status %s", k.Status)
	}
	evs := f.Sim.Events()
	var d lakiconnect.APIKeyRevokedData
	if len(evs) != 1 || json.Unmarshal(evs[0].Data, &d) != nil || d.Reason != "revoked_by_lakiconnect" {
		t.Fatalf("events = %+v", evs)
	}
}
