package dashboard_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/dashboard"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
)

const testToken = "dash-token-0123456789abcdef"

type tokens struct{}

func (tokens) Match(p string) (string, bool) { return "viewer", p == testToken }

// memSource is an in-memory Backend: the dashboard's own logic under test.
type memSource struct {
	inv  httpapi.Inventory
	recs []audit.Record
}

func (m *memSource) Inventory(context.Context) (httpapi.Inventory, error) { return m.inv, nil }
func (m *memSource) AuditRecords(context.Context) ([]audit.Record, error) { return m.recs, nil }
func (m *memSource) SecretStates(context.Context) ([]audit.SecretState, error) {
	out := make([]audit.SecretState, len(m.inv.Secrets))
	for i, s := range m.inv.Secrets {
		out[i] = audit.SecretState{Name: s.Name, KeyID: fmt.Sprintf("key_%08d", i), PolicyMaxAge: 30 * 24 * time.Hour,
			Scopes: []string{"reports:read"}, PolicyScopes: []string{"reports:read"}}
		if i == 3 {
			out[i].Scopes = []string{"payments:write", "reports:read"}
		}
	}
	return out, nil
}

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func source(n int) *memSource {
	m := &memSource{}
	for i := range n {
		env := "sandbox"
		if i%2 == 1 {
			env = "production"
		}
		next := now.Add(time.Duration(i) * time.Hour)
		m.inv.Secrets = append(m.inv.Secrets, httpapi.SecretStatus{
			Name: fmt.Sprintf("app/s%05d", i), Kind: "api_key", Environment: env, MasterMerchantID: fmt.Sprintf("mm_%d", i%3),
			Policy: []string{"checkout", "reporting"}[i%2], Owners: []string{fmt.Sprintf("team-%d", i%5)},
			CurrentVersionID: fmt.Sprintf("v-%d", i), AgeSeconds: int64(i%40) * 86400, NextRotation: &next,
		})
	}
	return m
}

func newServer(t testing.TB, src dashboard.Backend) *httptest.Server {
	h, err := dashboard.New(dashboard.Options{Backend: src, Tokens: tokens{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestUnauthenticatedIsRefusedOrSentToLogin(t *testing.T) {
	srv := newServer(t, source(3))
	c := noRedirect()
	if code, _, h := get(t, c, srv.URL+"/ui/?env=sandbox"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
		t.Fatalf("browser without session: %d %q, want a redirect to the login", code, h.Get("Location"))
	}
	if code, _, _ := get(t, c, srv.URL+"/ui/?format=json"); code != http.StatusUnauthorized {
		t.Fatalf("download without auth: %d, want 401", code)
	}
	if code, _, _ := get(t, c, srv.URL+"/ui/", "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	if code, body, _ := get(t, c, srv.URL+"/ui/", "Authorization", "Bearer "+testToken); code != http.StatusOK || !strings.Contains(body, "app/s00002") {
		t.Fatalf("bearer token: %d", code)
	}
	// A forged or altered cookie is not a session.
	if code, _, _ := get(t, c, srv.URL+"/ui/", "Cookie", "lakirotator_ui=dG9rZW46dmlld2Vy|99999999999|AAAA"); code != http.StatusSeeOther {
		t.Fatalf("forged cookie: %d, want the login redirect", code)
	}
}

func TestTokenLoginSetsAStrictHttpOnlySession(t *testing.T) {
	rec := &events.Recorder{}
	h, err := dashboard.New(dashboard.Options{Backend: source(3), Tokens: tokens{}, Now: func() time.Time { return now }, Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := noRedirect()
	resp, err := c.PostForm(srv.URL+"/ui/login", url.Values{"token": {"nope"}, "next": {"/ui/violations"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("bad token login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if evs := rec.Events(); len(evs) != 1 || evs[0].Step != events.StepAuth || evs[0].Outcome != events.OutcomeRefused || strings.Contains(fmt.Sprint(evs[0]), "nope") {
		t.Fatalf("refused login recorded as %+v, want one auth refusal without the presented token", evs)
	}
	resp, err = c.PostForm(srv.URL+"/ui/login", url.Values{"token": {testToken}, "next": {"https://evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/ui/" {
		t.Fatalf("login redirected to %q: only dashboard pages are allowed", loc)
	}
	cs := resp.Cookies()
	if len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Path != "/ui/" {
		t.Fatalf("session cookie = %+v", cs)
	}
	if strings.Contains(cs[0].Value, testToken) {
		t.Fatal("the session cookie carries the token")
	}
	if cs[0].Secure {
		t.Fatal("cookie is Secure on a loopback http listener: the browser would never send it back")
	}
	code, body, _ := get(t, c, srv.URL+"/ui/violations", "Cookie", cs[0].Name+"="+cs[0].Value)
	if code != http.StatusOK || !strings.Contains(body, "token:viewer") {
		t.Fatalf("with session: %d", code)
	}
}

func TestInventoryFiltersPagesAndDownloads(t *testing.T) {
	srv := newServer(t, source(120))
	c := &http.Client{}
	auth := []string{"Authorization", "Bearer " + testToken}
	_, body, _ := get(t, c, srv.URL+"/ui/?env=production&owner=team-1", auth...)
	// odd i with i%5==1: 1, 11, 21, ... 111 → 12 secrets
	if !strings.Contains(body, `<span id="count-shown">12</span> of 120`) {
		t.Fatalf("filtered count missing:\n%s", body[:min(len(body), 3000)])
	}
	if strings.Contains(body, "app/s00002") {
		t.Fatal("a sandbox secret shows under env=production")
	}
	_, body, _ = get(t, c, srv.URL+"/ui/?page=2&size=50", auth...)
	if !strings.Contains(body, "app/s00050") || strings.Contains(body, `data-secret="app/s00049"`) || !strings.Contains(body, "page 2 of 3") {
		t.Fatal("page 2 does not hold secrets 50–99")
	}
	// Deep links keep the filter in the pager and the downloads.
	_, body, _ = get(t, c, srv.URL+"/ui/?policy=checkout&size=10", auth...)
	if !strings.Contains(body, `href="?page=2&amp;policy=checkout&amp;size=10"`) || !strings.Contains(body, `href="?policy=checkout&amp;size=10&amp;format=csv"`) {
		t.Fatal("pager or download links lose the filter")
	}
	_, csvBody, h := get(t, c, srv.URL+"/ui/?policy=checkout&format=csv", auth...)
	rows, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if err != nil || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %v %s", err, h.Get("Content-Type"))
	}
	if len(rows) != 61 || rows[0][0] != "name" {
		t.Fatalf("csv has %d lines, want a header and 60 checkout secrets", len(rows))
	}
	_, jsonBody, _ := get(t, c, srv.URL+"/ui/?env=sandbox&format=json", auth...)
	var got []dashboard.InventoryRow
	if err := json.Unmarshal([]byte(jsonBody), &got); err != nil || len(got) != 60 {
		t.Fatalf("json: %v, %d rows", err, len(got))
	}
	over := 0
	for _, r := range got {
		if r.Overdue() {
			over++
		}
	}
	// ages are i%40 days against 30d: days 31..39 are over.
	if over == 0 || got[0].MaxAgeSeconds != 30*86400 {
		t.Fatalf("overdue rows %d, max %d", over, got[0].MaxAgeSeconds)
	}
}

func TestEmergenciesAndViolationsFromTheAuditTrail(t *testing.T) {
	src := source(4)
	at := func(m int) time.Time { return now.Add(-2*time.Hour + time.Duration(m)*time.Minute) }
	ev := func(m int, e events.Event) audit.Record {
		e.Time = at(m)
		return audit.Record{Time: e.Time, Event: e}
	}
	src.recs = []audit.Record{
		ev(0, events.Event{Step: events.StepTrigger, Outcome: events.OutcomeSucceeded, TriggerID: "trg_1", Cause: events.CauseCompromise, Actor: "alice", Source: events.SourceHTTP, Reason: "key in a paste", Secret: "app/s00001"}),
		ev(1, events.Event{Step: events.StepCreate, Outcome: events.OutcomeSucceeded, TriggerID: "trg_1", Cause: events.CauseCompromise, Secret: "app/s00001", KeyID: "key_abcd1234"}),
		ev(2, events.Event{Step: events.StepPromote, Outcome: events.OutcomeSucceeded, TriggerID: "trg_1", Cause: events.CauseCompromise, Secret: "app/s00001"}),
		ev(3, events.Event{Step: events.StepRetire, Outcome: events.OutcomeSucceeded, TriggerID: "trg_1", Cause: events.CauseCompromise, Secret: "app/s00001"}),
		ev(3, events.Event{Step: events.StepRotation, Outcome: events.OutcomeSucceeded, TriggerID: "trg_1", Cause: events.CauseCompromise, Secret: "app/s00001", KeyID: "key_abcd1234"}),
		ev(5, events.Event{Step: events.StepViolation, Outcome: events.OutcomeFailed, Secret: "app/s00002", Details: map[string]string{"reason": "excess scopes: payments:write"}}),
		ev(6, events.Event{Step: events.StepAlert, Outcome: events.OutcomeWarning, Secret: "app/s00003", Reason: "401/403 spike", Details: map[string]string{"count": "57"}}),
	}
	srv := newServer(t, src)
	c := &http.Client{}
	auth := []string{"Authorization", "Bearer " + testToken}
	_, body, _ := get(t, c, srv.URL+"/ui/emergencies", auth...)
	for _, want := range []string{"trg_1", "alice", "key in a paste", "3m0s", "…1234", ">promote<", ">retire<"} {
		if !strings.Contains(body, want) {
			t.Errorf("emergencies page lacks %q", want)
		}
	}
	_, body, _ = get(t, c, srv.URL+"/ui/violations", auth...)
	if !strings.Contains(body, "excess scopes: payments:write") || !strings.Contains(body, "401/403 spike") {
		t.Error("violations page lacks the scope violation or the spike")
	}
	_, body, _ = get(t, c, srv.URL+"/ui/", auth...)
	if !strings.Contains(body, `<span class="bad">excess: payments:write</span>`) || !strings.Contains(body, "…0003") {
		t.Error("inventory does not show the excess scope against the policy, or the current key's last 4")
	}
	_, body, _ = get(t, c, srv.URL+"/ui/timeline?format=json", auth...)
	var days []dashboard.DayCount
	if err := json.Unmarshal([]byte(body), &days); err != nil || len(days) != 30 {
		t.Fatalf("timeline json: %v, %d days", err, len(days))
	}
	last := days[29]
	if last.ByCause["compromise"] != 1 || len(last.Emergencies) != 1 {
		t.Fatalf("today on the timeline = %+v", last)
	}
}

// BenchmarkInventoryPage10k renders the first inventory page at 10,000
// managed secrets, as a browser asks for it.
func BenchmarkInventoryPage10k(b *testing.B) {
	srv := newServer(b, source(10_000))
	c := &http.Client{}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n < 10_000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

func TestSessionEndsAfterItsTTL(t *testing.T) {
	clock := now
	h, err := dashboard.New(dashboard.Options{Backend: source(2), Tokens: tokens{}, SessionTTL: 10 * time.Minute, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := noRedirect()
	resp, err := c.PostForm(srv.URL+"/ui/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	clock = now.Add(9 * time.Minute)
	if code, _, _ := get(t, c, srv.URL+"/ui/", "Cookie", cookie); code != http.StatusOK {
		t.Fatalf("session within its TTL: %d", code)
	}
	clock = now.Add(10 * time.Minute)
	if code, _, _ := get(t, c, srv.URL+"/ui/", "Cookie", cookie); code != http.StatusSeeOther {
		t.Fatalf("session past its TTL: %d, want the login redirect", code)
	}
}
