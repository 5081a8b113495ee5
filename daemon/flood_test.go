package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// readsOf counts the store reads of each secret.
type readsOf struct {
	secretstore.Store
	mu    sync.Mutex
	reads map[string]int
}

func (c *readsOf) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	c.mu.Lock()
	c.reads[name]++
	c.mu.Unlock()
	return c.Store.Get(ctx, name, sel)
}

func (c *readsOf) of(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[name]
}

// buildCounting builds the world's service on a store that counts reads.
func (w *world) buildCounting() (*daemon.Service, *readsOf) {
	w.t.Helper()
	cfg, err := config.Parse(w.cfgPath, w.cfgYAML)
	if err != nil {
		w.t.Fatal(err)
	}
	counting := &readsOf{Store: w.store, reads: map[string]int{}}
	svc, err := daemon.Build(context.Background(), cfg, daemon.BuildOptions{
		Clock: w.clk, LookupEnv: w.lookupEnv, Stdout: &w.stdout,
		Logger:         slog.New(slog.NewTextHandler(&w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stores:         map[laki.Environment]secretstore.Store{laki.Sandbox: counting},
		RetireInterval: 24 * time.Hour, RefreshInterval: 24 * time.Hour,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return svc, counting
}

func forgedEvent(t *testing.T, at time.Time, merchant string, i int) ([]byte, string) {
	body, err := json.Marshal(lakiconnect.Event{
		ID: fmt.Sprintf("evt_forged_%d", i), Object: "event", Type: laki.EventAPIKeyExposed, Created: at.Unix(),
		MasterMerchantID: merchant, Environment: laki.Sandbox, IdempotencyKey: fmt.Sprintf("forged-%d", i),
		Data: json.RawMessage(`{"key_id":"key_000000000000000000000001","source":"public_repository"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	forger := secret.New("whsec_" + strings.Repeat("Z", 43) + "=")
	return body, webhooksig.Sign(at, body, forger)
}

// parallel runs n requests on 8 workers and returns how many got want.
func parallel(n, want int, do func(i int) int) int {
	var got atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if do(i) == want {
					got.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(got.Load())
}

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

var refusedSeries = regexp.MustCompile(`lakirotator_refused_requests_total\{code="([^"]+)",door="([^"]+)"\} (\d+)`)

// A flood of 10,000 forged security events and 1,000 unauthenticated
// requests with 32 KB paths adds a few KB of audit and log, costs no
// store read per forgery, and the metrics count every request.
func TestFloodOfForgedAndOversizedRequestsIsBounded(t *testing.T) {
	w := newWorld(t, worldOptions{securityWebhook: true})
	svc, reads := w.buildCounting()
	r := w.run(svc, w.ln)
	auditPath := filepath.Join(w.dir, "audit.jsonl")
	auditBefore, logBefore := fileSize(t, auditPath), len(w.logs.String())
	secretReadsBefore := reads.of(secSecurity)
	hook := r.url + config.SecurityWebhookPath(laki.Sandbox, w.merchant)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	const forged, oversized = 10_000, 1_000
	start := time.Now()
	refused := parallel(forged, http.StatusUnauthorized, func(i int) int {
		body, sig := forgedEvent(t, w.clk.Now(), w.merchant, i)
		req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
		req.Header.Set(lakiconnect.SignatureHeader, sig)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), secSecurity) || strings.Contains(string(b), "store") {
			t.Errorf("a forged delivery's answer shows internals: %s", b)
		}
		return resp.StatusCode
	})
	if refused != forged {
		t.Errorf("%d of %d forged events refused with 401", refused, forged)
	}
	t.Logf("forged events sent in %s", time.Since(start))
	start = time.Now()
	// Written whole on one connection each, so the test measures the
	// daemon, not the client's write pacing.
	longReq := []byte("GET /v1/triggers/" + strings.Repeat("a", 32<<10) + " HTTP/1.1\r\nHost: rotator\r\nConnection: close\r\n\r\n")
	refused = 0
	for range oversized {
		if sendRaw(w.ln.Addr().String(), longReq) == http.StatusUnauthorized {
			refused++
		}
	}
	if refused != oversized {
		t.Errorf("%d of %d oversized unauthenticated requests refused with 401", refused, oversized)
	}
	// The dashboard is a door too: bad bearer tokens on long /ui/ URLs.
	uiReq := []byte("GET /ui/timeline?q=" + strings.Repeat("b", 32<<10) + " HTTP/1.1\r\nHost: rotator\r\nAuthorization: Bearer not-a-token\r\nConnection: close\r\n\r\n")
	refusedUI := 0
	for range oversized {
		if sendRaw(w.ln.Addr().String(), uiReq) == http.StatusUnauthorized {
			refusedUI++
		}
	}
	if refusedUI != oversized {
		t.Errorf("%d of %d bad dashboard tokens refused with 401", refusedUI, oversized)
	}
	t.Logf("oversized requests sent in %s", time.Since(start))

	_, metrics := getURL(t, r.url+"/metrics", "")
	counted := map[string]int{}
	for _, m := range refusedSeries.FindAllStringSubmatch(metrics, -1) {
		n, _ := strconv.Atoi(m[3])
		counted[m[2]+"/"+m[1]] += n
	}
	if counted["lakiconnect_event/bad_signature"] != forged || counted["http/missing_token"] != oversized || counted["http/dashboard_credential_refused"] != oversized {
		t.Errorf("refused requests counted %v; want %d forged events and %d missing tokens", counted, forged, oversized)
	}
	// One read of the secrets is two store reads (AWSCURRENT, AWSPENDING):
	// the first (nothing held yet) and at most one fresh re-read.
	if n := reads.of(secSecurity) - secretReadsBefore; n > 4 {
		t.Errorf("%d forged events caused %d store reads of the signing secret; want at most 4 (two reads of current and pending)", forged, n)
	}
	r.stop() // the last summaries are written at shutdown

	auditGrowth, logGrowth := fileSize(t, auditPath)-auditBefore, len(w.logs.String())-logBefore
	t.Logf("audit grew %d bytes, log %d bytes for %d refused requests", auditGrowth, logGrowth, forged+2*oversized)
	if auditGrowth > 6<<10 {
		t.Errorf("the flood added %d bytes of audit; want at most 6 KB", auditGrowth)
	}
	if logGrowth > 8<<10 {
		t.Errorf("the flood added %d bytes of log (shutdown included); want at most 8 KB", logGrowth)
	}
	recs := auditRecords(t, w)
	total := 0
	for _, rec := range recs {
		if rec.Event.Details["reason"] == "bad_signature" {
			n, _ := strconv.Atoi(rec.Event.Details["count"])
			total += n
		}
		if strings.Contains(fmt.Sprint(rec.Event), "aaaaaaaa") || strings.Contains(fmt.Sprint(rec.Event), "bbbbbbbb") || len(rec.Event.Reason) > 400 {
			t.Errorf("record %d holds the raw path or an unbounded reason (%d bytes)", rec.Seq, len(rec.Event.Reason))
		}
	}
	if total != forged {
		t.Errorf("the audit's summaries count %d forged events, want %d", total, forged)
	}
}

// A receiver whose signing secret cannot be read tells an outsider only
// that the delivery cannot be verified: no store error, no secret name.
func TestSecurityEventReceiverHidesInternals(t *testing.T) {
	w := newWorld(t, worldOptions{securityWebhook: true})
	w.cfgYAML = []byte(strings.Replace(string(w.cfgYAML), "secret: sec/sandbox}", "secret: sec/missing}", 1))
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	body, sig := forgedEvent(t, w.clk.Now(), w.merchant, 1)
	req, _ := http.NewRequest(http.MethodPost, r.url+config.SecurityWebhookPath(laki.Sandbox, w.merchant), bytes.NewReader(body))
	req.Header.Set(lakiconnect.SignatureHeader, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503 (LakiConnect retries)", resp.StatusCode)
	}
	for _, leak := range []string{"sec/missing", "not found", "store", "AWSCURRENT"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("answer to an unauthenticated caller shows %q: %s", leak, b)
		}
	}
}

// sendRaw writes a whole request on a new connection and returns the status.
func sendRaw(addr string, req []byte) int {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
