package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lakirotator/lakirotator/"

// pkg is one package of the module as `go list` reports it (without tests:
// tests may use real parts, such as the simulator, that the code may not).
type pkg struct {
	ImportPath string
	Name       string
	Imports    []string
}

func listModule(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Name,Imports", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		for i, imp := range p.Imports {
			p.Imports[i] = strings.TrimPrefix(imp, module)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages of the module", len(pkgs))
	}
	return pkgs
}

func under(prefixes ...string) func(string) bool {
	return func(p string) bool {
		for _, x := range prefixes {
			if p == x || strings.HasPrefix(p, x+"/") {
				return true
			}
		}
		return false
	}
}

func exactly(names ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(names, p) }
}

// rule forbids the packages From matches to depend on what Forbid matches:
// through any chain of the module's packages, or, with Direct, by importing
// it themselves (for standard packages, which every client reaches).
type rule struct {
	Name   string
	Why    string
	From   func(string) bool
	Forbid func(string) bool
	Direct bool
}

// The store seam (interface and stored-value format) lives under
// providers/ but is not an outside system; policies may speak of stored
// credentials.
var providers = func(p string) bool {
	return under("providers")(p) && !under("providers/secretstore")(p)
}

var domain = under("policies", "inventory", "config", "events", "audit", "notify", "rotator", "laki", "trigger")

// ofTheModule matches the module's own packages (import paths as listed,
// with the module prefix trimmed); standard packages never start so.
// TestEveryPackageIsOfTheModule keeps the list whole.
var ofTheModule = under("audit", "bench", "cli", "cmd", "config", "consumer", "daemon", "dashboard", "demo", "e2e", "events", "examples",
	"ha", "httpapi", "inbound", "internal", "inventory", "laki", "metrics", "notify", "policies", "providers", "rotator",
	"securityevents", "terraform", "trigger")

// consumerMayUse is all of the module that the consumer package may bring
// into other teams' applications: the stored format and the signature
// header parser, with their leaves.
var consumerMayUse = func(p string) bool {
	return under("consumer")(p) || exactly("providers/secretstore", "providers/lakiconnect/webhooksig", "internal/clock", "internal/secret")(p)
}

var rules = []rule{
	{Name: "policies import no provider", Why: "policy checks take facts and a time, not a client or a store",
		From: under("policies"), Forbid: providers},
	{Name: "the engine imports no notifier", Why: "the engine reports on the events seam; notify/ listens there",
		From: under("rotator"), Forbid: under("notify")},
	{Name: "the engine imports no transport", Why: "requests reach the engine through the daemon; the engine serves nothing",
		From: under("rotator"), Forbid: under("httpapi", "securityevents", "inbound", "dashboard", "daemon", "cli")},
	{Name: "the engine serves no HTTP", Why: "HTTP is a transport: it belongs to httpapi and the clients of outside systems",
		From: under("rotator"), Forbid: exactly("net/http", "net/http/httptest"), Direct: true},
	{Name: "the consumer package imports nothing of the daemon", Why: "it runs in the applications that use the keys: only the stored format and the signature parser may come along",
		From: under("consumer"), Forbid: func(p string) bool { return ofTheModule(p) && !consumerMayUse(p) }},
	{Name: "no domain package imports the LakiConnect HTTP client", Why: "the domain speaks laki's vocabulary; the client is one way of talking to LakiConnect",
		From: domain, Forbid: under("providers/lakiconnect")},
	{Name: "laki is a leaf", Why: "every layer shares its vocabulary, so it leans on none of them (only on the redacting secret type)",
		From: under("laki"), Forbid: func(p string) bool { return ofTheModule(p) && !exactly("internal/secret")(p) }},
}

// knownBreaches are breaches that a later step removes; each names it. The
// test fails when one of them no longer happens, so that the list shrinks.
var knownBreaches = map[string]string{}

// path returns a chain of the module's packages from one that leads to a
// package forbid matches, or nil.
func path(pkgs map[string]pkg, from string, forbid func(string) bool, direct bool) []string {
	type step struct {
		at   string
		prev int
	}
	queue := []step{{at: from, prev: -1}}
	seen := map[string]bool{from: true}
	for i := 0; i < len(queue); i++ {
		p := pkgs[queue[i].at]
		for _, imp := range p.Imports {
			if forbid(imp) {
				chain := []string{imp}
				for j := i; j >= 0; j = queue[j].prev {
					chain = append(chain, queue[j].at)
				}
				slices.Reverse(chain)
				return chain
			}
			if _, ours := pkgs[imp]; ours && !direct && !seen[imp] {
				seen[imp] = true
				queue = append(queue, step{at: imp, prev: i})
			}
		}
	}
	return nil
}

func TestImportRules(t *testing.T) {
	pkgs := listModule(t)
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	slices.Sort(names)

	used := map[string]bool{}
	for _, r := range rules {
		bound := 0
		for _, n := range names {
			if !r.From(n) {
				continue
			}
			bound++
			chain := path(pkgs, n, r.Forbid, r.Direct)
			if chain == nil {
				continue
			}
			key := n + " -> " + chain[len(chain)-1]
			if _, known := knownBreaches[key]; known {
				used[key] = true
				continue
			}
			via := ""
			if len(chain) > 2 {
				via = " (via " + strings.Join(chain[1:len(chain)-1], " -> ") + ")"
			}
			t.Errorf("%s: %s imports %s%s; %s", r.Name, n, chain[len(chain)-1], via, r.Why)
		}
		if bound == 0 {
			t.Errorf("rule %q binds no package: its pattern no longer matches the tree", r.Name)
		}
	}
	for key, why := range knownBreaches {
		if !used[key] {
			t.Errorf("known breach %q (%s) no longer happens: take it off knownBreaches", key, why)
		}
	}
}

// A new top-level package must be named in ofTheModule, or the consumer
// rule would let the consumer package bring it along unseen.
func TestEveryPackageIsOfTheModule(t *testing.T) {
	for name := range listModule(t) {
		if !ofTheModule(name) {
			t.Errorf("package %s is not in ofTheModule: add its top-level directory", name)
		}
	}
	if ofTheModule("net/http") || ofTheModule("github.com/aws/aws-sdk-go-v2/aws") {
		t.Error("ofTheModule matches packages outside the module")
	}
}

func TestNothingImportsAMain(t *testing.T) {
	pkgs := listModule(t)
	mains := 0
	for _, p := range pkgs {
		if p.Name == "main" {
			mains++
		}
	}
	if mains == 0 {
		t.Fatal("go list reports no main package: cmd/ has moved")
	}
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if q, ok := pkgs[imp]; ok && q.Name == "main" {
				t.Errorf("%s imports %s, a main package: move what it needs into a library package", p.ImportPath, imp)
			}
		}
	}
}

// The rules must catch what they are written for: a policy package that
// reaches a provider through another package is reported with the chain.
func TestRuleReportsTheChain(t *testing.T) {
	pkgs := map[string]pkg{
		"policies/scan": {ImportPath: "policies/scan", Imports: []string{"inventory", "fmt"}},
		"inventory":     {ImportPath: "inventory", Imports: []string{"providers/lakiconnect"}},
	}
	got := path(pkgs, "policies/scan", rules[0].Forbid, false)
	if want := []string{"policies/scan", "inventory", "providers/lakiconnect"}; !slices.Equal(got, want) {
		t.Errorf("chain %v, want %v", got, want)
	}
	if got := path(pkgs, "policies/scan", rules[0].Forbid, true); got != nil {
		t.Errorf("a direct-only rule followed the chain: %v", got)
	}
	pkgs["inventory"] = pkg{ImportPath: "inventory", Imports: []string{"providers/secretstore"}}
	if got := path(pkgs, "policies/scan", rules[0].Forbid, false); got != nil {
		t.Errorf("the store seam is not a provider, got %v", got)
	}
}
