package daemon_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/rotator"
)

func getURL(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var whoamiSeries = regexp.MustCompile(`lakirotator_provider_calls_total\{operation="GET /whoami",provider="lakiconnect",status="[^"]*"\} (\d+)`)

// whoamiCalls is how many /whoami calls the process has made, by its metrics.
func whoamiCalls(t *testing.T, metricsURL string) int {
	t.Helper()
	_, body := getURL(t, metricsURL, "")
	n := 0
	for _, m := range whoamiSeries.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// Readiness comes from the process's own recent calls, computed in the
// background: while LakiConnect's /whoami is slow, a daemon that is
// rotating is ready and answers at once, and 1,000 unauthenticated /readyz
// calls cost no LakiConnect call and show no internals.
func TestReadinessFromOwnCallsCostsNoQuotaAndLeaksNothing(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.cfgYAML = []byte(strings.Replace(string(w.cfgYAML), "http:\n", "http:\n  readiness_interval: 2s\n", 1))
	if err := w.fix.Sim.InjectFault(lakisim.Fault{Method: "GET", PathPrefix: "/whoami", Latency: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	st, err := r.client.Trigger(context.Background(), httpapi.TriggerRequest{Secret: secReporting, Cause: events.CauseManual, Reason: "readiness test"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitTrigger(r, st.ID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := getURL(t, r.url+"/readyz", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			_, details := getURL(t, r.url+"/readyz", apiToken)
			t.Fatalf("/readyz not ready while /whoami is slow and rotations work: %s", details)
		}
		time.Sleep(15 * time.Millisecond)
		w.clk.Advance(time.Second)
	}

	before := whoamiCalls(t, r.url+"/metrics")
	for i := range 1000 {
		start := time.Now()
		code, body := getURL(t, r.url+"/readyz", "")
		if took := time.Since(start); took > time.Second {
			t.Fatalf("/readyz call %d took %s", i, took)
		}
		if code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
			t.Fatalf("/readyz call %d: %d %s; want 200 and only the status", i, code, body)
		}
	}
	n := whoamiCalls(t, r.url+"/metrics") - before
	t.Logf("1,000 /readyz calls: %d /whoami calls at LakiConnect", n)
	if n > 1 {
		t.Errorf("1,000 /readyz calls cost %d /whoami calls; at most the one of a background interval", n)
	}
	code, body := getURL(t, r.url+"/readyz", apiToken)
	if code != http.StatusOK || !strings.Contains(body, `"checked_at"`) || !strings.Contains(body, `"failures"`) {
		t.Errorf("authenticated /readyz: %d %s; want the details", code, body)
	}
}

// /metrics can have its own listener; it then is not on the API's, and by
// default names no managed secret.
func TestMetricsOnTheirOwnListenerNameNoSecret(t *testing.T) {
	w := newWorld(t, worldOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w.cfgYAML = []byte(strings.Replace(string(w.cfgYAML), "http:\n", "http:\n  metrics: {listen: \""+addr+"\"}\n", 1))
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	st, err := r.client.Trigger(context.Background(), httpapi.TriggerRequest{Secret: secReporting, Cause: events.CauseManual, Reason: "metrics test"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitTrigger(r, st.ID)

	if code, _ := getURL(t, r.url+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("API listener /metrics: %d, want 404 when metrics have their own listener", code)
	}
	code, body := getURL(t, "http://"+addr+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, `lakirotator_rotations_total{cause="manual",result="succeeded"} 1`) {
		t.Fatalf("metrics listener: %d, rotations series missing", code)
	}
	for _, name := range []string{secReporting, secCheckout, secWebhook, w.merchant} {
		if strings.Contains(body, name) {
			t.Errorf("unauthenticated /metrics names %s", name)
		}
	}
	if code, _ := getURL(t, "http://"+addr+"/v1/inventory", apiToken); code != http.StatusNotFound {
		t.Errorf("metrics listener serves the API: %d", code)
	}
}
