package dashboard_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/dashboard"
	"github.com/lakirotator/lakirotator/httpapi"
)

// liveSource is a memSource whose inventory the test changes while a
// browser shows it.
type liveSource struct {
	mu sync.Mutex
	m  *memSource
}

func (l *liveSource) Inventory(ctx context.Context) (httpapi.Inventory, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.Inventory(ctx)
}

func (l *liveSource) AuditRecords(ctx context.Context) ([]audit.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.AuditRecords(ctx)
}

func (l *liveSource) SecretStates(ctx context.Context) ([]audit.SecretState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.SecretStates(ctx)
}

func (l *liveSource) set(m *memSource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m = m
}

// TestPageRefreshesItselfAndFollowsDarkModeAndPrint drives chromium: the
// open inventory page picks up new secrets without a reload, and the
// stylesheet answers prefers-color-scheme: dark and print.
func TestPageRefreshesItselfAndFollowsDarkModeAndPrint(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install -y chromium): %v", err)
	}
	src := &liveSource{m: source(5)}
	h, err := dashboard.New(dashboard.Options{Backend: src, Tokens: tokens{}, Refresh: time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/?owner=team-0"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", testToken), chromedp.Submit("#token"), chromedp.WaitVisible("table#inventory")); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := text("#count-shown"); got != "1" {
		t.Fatalf("owner=team-0 of 5 secrets shows %s, want 1", got)
	}
	src.set(source(20)) // team-0 now owns secrets 0, 5, 10 and 15
	deadline := time.Now().Add(10 * time.Second)
	for text("#count-shown") != "4" {
		if time.Now().After(deadline) {
			t.Fatalf("the page still shows %s secrets 10 s after the inventory changed", text("#count-shown"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != srv.URL+"/ui/?owner=team-0" {
		t.Fatalf("after the refresh the page is at %q (%v), want the same deep link", loc, err)
	}

	style := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	light := style(`getComputedStyle(document.body).backgroundColor`)
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	if dark := style(`getComputedStyle(document.body).backgroundColor`); dark == light || dark != "rgb(13, 17, 23)" {
		t.Errorf("dark mode background = %s (light %s)", dark, light)
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	if d := style(`getComputedStyle(document.querySelector("form.filters")).display`); d != "none" {
		t.Errorf("filters print with display %s, want none", d)
	}
	if n := style(`String(document.querySelectorAll("table#inventory tbody tr[data-secret]").length)`); n != fmt.Sprint(4) {
		t.Errorf("printed table has %s rows, want 4", n)
	}
}
