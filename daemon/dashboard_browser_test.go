package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// The dashboard browser test's extra secrets: 40 API keys (the simulator allows 50 per merchant) on top of the
// world's 3 managed secrets, one of them holding more scopes than its policy.
const (
	uiExtraSecrets = 40
	uiExcess       = "ui/svc-007"
	uiOwner        = "carol"
)

// Environment variables of the browser test.
const (
	// envUIArtifacts names a folder for the screenshots (default: the test's temp dir).
	envUIArtifacts = "LAKIROTATOR_UI_ARTIFACTS"
	// envUIReadmeShot names a PNG to write the README's screenshot to.
	envUIReadmeShot = "LAKIROTATOR_UI_README_SCREENSHOT"
)

// uiWorld is a test world whose secrets live in Secrets Manager on moto.
type uiWorld struct {
	*world
	sm   *secretsmanager.Store
	seed *sm.Client
}

func newUIWorld(t *testing.T) *uiWorld {
	w := newWorld(t, worldOptions{})
	endpoint := motoserver.Start(t)
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	store, err := secretsmanager.New(context.Background(), secretsmanager.Config{
		Region: motoserver.Region, Endpoint: endpoint, Credentials: creds,
		Limits: secretsmanager.Limits{ReadRate: 1000, WriteRate: 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	// moto stamps versions with the real time: bring the fake clock there,
	// so that ages read as they would in production.
	w.clk.Set(time.Now().UTC())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", w.logs.String())
		}
	})
	u := &uiWorld{world: w, sm: store,
		seed: sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})}
	ctx := context.Background()
	// The world's own secrets move to moto as they are.
	if err := w.store.List(ctx, nil, func(s secretstore.Secret) error {
		v, err := w.store.Get(ctx, s.Name, secretstore.ByStage(secretstore.StageCurrent))
		if err != nil {
			return err
		}
		u.create(s.Name, v.Value, s.Tags)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range uiExtraSecrets {
		name := fmt.Sprintf("ui/svc-%03d", i)
		scopes, policy := checkoutScopes, "checkout"
		if i%3 == 1 {
			scopes, policy = reportingScopes, "reporting"
		}
		if name == uiExcess {
			scopes = append(slices.Clone(checkoutScopes), laki.ScopeReportsRead)
		}
		k, err := w.fix.Sim.CreateKey(laki.Sandbox, w.merchant, name, scopes)
		if err != nil {
			t.Fatal(err)
		}
		w.remember(k.Secret)
		strs := make([]string, len(k.Scopes))
		for j, s := range k.Scopes {
			strs[j] = string(s)
		}
		v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(laki.Sandbox), MasterMerchantID: w.merchant,
			KeyID: k.ID, Secret: k.Secret, Scopes: strs, CreatedAt: w.clk.Now()}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		u.create(name, v, nil)
		owner := []string{"dave", "erin", uiOwner}[i%3]
		fmt.Fprintf(&lines, "  - {name: %s, kind: api_key, environment: sandbox, master_merchant_id: %s, policy: %s, owners: [%s]}\n", name, w.merchant, policy, owner)
	}
	cfg := strings.Replace(string(w.cfgYAML), "engine:\n", lines.String()+"engine:\n", 1)
	// A policy scan every minute of the fake clock, so that the violation shows.
	cfg = strings.Replace(cfg, "policy_scan:\n  schedule: \"0 0 1 1 *\"", "policy_scan:\n  schedule: \"* * * * *\"", 1)
	w.cfgYAML = []byte(cfg)
	if err := os.WriteFile(w.cfgPath, w.cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *uiWorld) create(name string, v secret.Value, tags map[string]string) {
	u.t.Helper()
	in := &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}
	for k, val := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(val)})
	}
	if _, err := u.seed.CreateSecret(context.Background(), in); err != nil {
		u.t.Fatalf("moto: create %s: %v", name, err)
	}
}

func (u *uiWorld) build() *daemon.Service {
	u.t.Helper()
	cfg, err := config.Parse(u.cfgPath, u.cfgYAML)
	if err != nil {
		u.t.Fatalf("config: %v", err)
	}
	svc, err := daemon.Build(context.Background(), cfg, daemon.BuildOptions{
		Clock: u.clk, LookupEnv: u.lookupEnv, Stdout: &u.stdout,
		Logger: slog.New(slog.NewTextHandler(&u.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stores: map[laki.Environment]secretstore.Store{laki.Sandbox: u.sm},
		Hooks:  rotator.Hooks{}, RetireInterval: 24 * time.Hour, RefreshInterval: 24 * time.Hour,
	})
	if err != nil {
		u.t.Fatalf("build: %v", err)
	}
	return svc
}

// secrets is every value the test made or moto holds, in any version.
func (u *uiWorld) secrets() []secret.Value {
	u.t.Helper()
	ctx := context.Background()
	out := u.createdSoFar()
	if err := u.sm.List(ctx, nil, func(s secretstore.Secret) error {
		for _, vi := range s.Versions {
			v, err := u.sm.Get(ctx, s.Name, secretstore.ByID(vi.ID))
			if err != nil {
				return err
			}
			out = append(out, v.Value)
		}
		return nil
	}); err != nil {
		u.t.Fatal(err)
	}
	return out
}

// browser starts Debian's chromium headless with a fresh profile. A missing
// browser fails the test: CI installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install -y chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func TestDashboardInABrowser(t *testing.T) {
	u := newUIWorld(t)
	r := u.run(u.build(), nil)
	ctx := context.Background()

	// An emergency: a compromised key, rotated at once.
	st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseCompromise, Reason: "key pasted in a support ticket", Requester: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if st = u.waitTrigger(r, st.ID); st.State != httpapi.StateSucceeded {
		t.Fatalf("emergency trigger: %+v", st)
	}
	// A violation: the policy scan (every fake minute) finds the excess scope.
	u.eventually("the policy scan reports "+uiExcess, func() bool {
		u.clk.Advance(time.Minute)
		return len(eventsWhere(r.rec, func(e events.Event) bool { return e.Step == events.StepViolation && e.Secret == uiExcess })) > 0
	})
	inv, err := r.client.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Secrets) < 43 {
		t.Fatalf("inventory has %d secrets, want about 50", len(inv.Secrets))
	}
	carol := 0
	for _, s := range inv.Secrets {
		if slices.Contains(s.Owners, uiOwner) {
			carol++
		}
	}

	base, _ := url.Parse(r.url)
	artefacts := os.Getenv(envUIArtifacts)
	if artefacts == "" {
		artefacts = t.TempDir()
	} else if err := os.MkdirAll(artefacts, 0o755); err != nil {
		t.Fatal(err)
	}

	bctx := browser(t)
	var mu sync.Mutex
	var requested []string
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requested = append(requested, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	b := &tab{t: t, ctx: bctx, artefacts: artefacts, logs: &u.logs}
	var pages []string

	// Log in with the token; the browser lands on the page it asked for.
	b.do(chromedp.Navigate(r.url+"/ui/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", apiToken), chromedp.Submit("#token"),
		chromedp.WaitVisible("table#inventory"))
	shown, caption := b.text("#count-shown"), b.text("table#inventory caption")
	rows := evaluate[int](b, `document.querySelectorAll("table#inventory tbody tr[data-secret]").length`)
	inventoryHTML := b.page("inventory")
	pages = append(pages, inventoryHTML)
	if shown != fmt.Sprint(len(inv.Secrets)) || rows != min(50, len(inv.Secrets)) {
		t.Fatalf("inventory shows %s secrets in %d rows, want %d (caption %q)", shown, rows, len(inv.Secrets), caption)
	}
	for _, want := range []string{uiExcess, "excess: customers:read, payments:read, payments:write", secCheckout, "over policy age", `role="img"`} {
		if !strings.Contains(inventoryHTML, want) {
			t.Errorf("inventory page lacks %q", want)
		}
	}
	if path := os.Getenv(envUIReadmeShot); path != "" {
		b.do(chromedp.EmulateViewport(1400, 820))
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A deep link with a filter.
	b.do(chromedp.Navigate(r.url+"/ui/?owner="+uiOwner), chromedp.WaitVisible("table#inventory"))
	filtered := b.text("#count-shown")
	filteredRows := evaluate[int](b, `document.querySelectorAll("table#inventory tbody tr[data-secret]").length`)
	filteredHTML := b.page("inventory-filtered")
	pages = append(pages, filteredHTML)
	if filtered != fmt.Sprint(carol) || filteredRows != carol || carol == 0 {
		t.Errorf("owner filter shows %s (%d rows), want %d", filtered, filteredRows, carol)
	}
	if strings.Contains(filteredHTML, `data-secret="`+secReporting+`"`) {
		t.Errorf("bob's %s shows under owner=%s", secReporting, uiOwner)
	}

	// Violations: the excess scope's row.
	row := `table#violations tr[data-secret="` + uiExcess + `"]`
	b.do(chromedp.Navigate(r.url+"/ui/violations"), chromedp.WaitVisible(row))
	if v := b.text(row); !strings.Contains(v, "over_privileged") {
		t.Errorf("violation row = %q, want over_privileged", v)
	}
	pages = append(pages, b.page("violations"))

	// Emergencies: the trigger with its actor, reason and steps.
	b.do(chromedp.Navigate(r.url+"/ui/emergencies"), chromedp.WaitVisible("section.emergency"))
	steps := evaluate[[]string](b, `Array.from(document.querySelectorAll("section.emergency table.steps tbody tr td:nth-child(2)")).map(td => td.textContent)`)
	emergHTML := b.page("emergencies")
	pages = append(pages, emergHTML)
	for _, want := range []string{st.ID, "compromise", "key pasted in a support ticket", "alice"} {
		if !strings.Contains(emergHTML, want) {
			t.Errorf("emergencies page lacks %q", want)
		}
	}
	// Zero grace for a compromise: the exposed key ends within the rotation.
	if d, err := time.ParseDuration(b.text("section.emergency .to-revocation")); err != nil || d > time.Minute {
		t.Errorf("exposure to revocation = %v (%v), want the time the rotation took", d, err)
	}
	for _, step := range []string{"create", "test", "promote", "retire"} {
		if !slices.Contains(steps, step) {
			t.Errorf("emergency steps %v lack %s", steps, step)
		}
	}

	// Timeline: today's compromise bar and the emergency mark.
	b.do(chromedp.Navigate(r.url+"/ui/timeline"), chromedp.WaitVisible("#timeline-chart"))
	label, err := chromedp.Run(bctx, chromedp.AttributeValue("#timeline-chart", "aria-label"))
	if err != nil {
		t.Fatal(err)
	}
	compromiseBars := evaluate[int](b, `document.querySelectorAll("#timeline-chart rect.cause-compromise").length`)
	marks := evaluate[int](b, `document.querySelectorAll("#timeline-chart .emergency-mark").length`)
	pages = append(pages, b.page("timeline"))
	if compromiseBars != 1 || marks != 1 || !strings.Contains(label.Value, "1 emergencies") {
		t.Errorf("timeline: %d compromise bars, %d marks, label %q", compromiseBars, marks, label.Value)
	}

	// What the page's script and storage hold, and the downloads as the browser gets them.
	b.do(chromedp.Navigate(r.url+"/ui/"), chromedp.WaitVisible("table#inventory"))
	jsState := evaluate[string](b, `JSON.stringify({cookie: document.cookie, local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage),
		globals: Object.keys(window).map(k => { try { return k + "=" + String(window[k]); } catch (e) { return k; } })})`)
	downloads := evaluate[[]string](b, `Promise.all(["/ui/?format=csv", "/ui/?format=json", "/ui/violations?format=csv", "/ui/emergencies?format=json", "/ui/timeline?format=csv"].map(u => fetch(u, {credentials: "same-origin"}).then(r => r.text())))`, chromedp.EvalAwaitPromise)
	if strings.Contains(jsState, "lakirotator_ui") {
		t.Error("the session cookie is readable by script: it must be HttpOnly")
	}
	if len(downloads) != 5 || !strings.Contains(downloads[0], uiExcess) || !strings.Contains(downloads[1], `"key_last4"`) || !strings.Contains(downloads[3], st.ID) {
		t.Fatalf("downloads do not hold what the pages show: %d files", len(downloads))
	}
	values := u.secrets()
	for i, p := range pages {
		assertNoSecrets(t, fmt.Sprintf("page %d", i), p, values)
	}
	assertNoSecrets(t, "javascript state", jsState, values)
	for i, d := range downloads {
		assertNoSecrets(t, fmt.Sprintf("download %d", i), d, values)
	}
	assertNoSecrets(t, "daemon logs", u.logs.String(), values)

	// Nothing left the host: every request went to the daemon's own address.
	mu.Lock()
	defer mu.Unlock()
	if len(requested) < 10 {
		t.Fatalf("only %d requests seen: the network listener is not working", len(requested))
	}
	for _, raw := range requested {
		p, err := url.Parse(raw)
		if err != nil || (p.Host != base.Host && p.Scheme != "data" && p.Scheme != "about") {
			t.Errorf("the browser asked for %q, which is not the daemon (%s)", raw, base.Host)
		}
	}
}

// tab is the browser tab of a test, failing the test on any browser error.
type tab struct {
	t         *testing.T
	ctx       context.Context
	artefacts string
	logs      interface{ String() string }
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\ndaemon logs:\n%s", err, b.logs.String())
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// page returns the page's HTML and saves its screenshot as name.png.
func (b *tab) page(name string) string {
	b.t.Helper()
	html, err := chromedp.Run(b.ctx, chromedp.OuterHTML("html"))
	if err != nil {
		b.t.Fatalf("browser: html: %v", err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(b.artefacts, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return html
}

func evaluate[T any](b *tab, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("browser: evaluate: %v", err)
	}
	return v
}
