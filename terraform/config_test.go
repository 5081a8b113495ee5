package terraform_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
)

const (
	exampleDir     = "examples/sandbox-and-production"
	configTemplate = exampleDir + "/config.yaml.tftpl"
	// The policies the Dockerfile bakes into the image by default.
	imagePoliciesSource = "../policies/examples"
)

// goStringConsts returns the string constants of a Go file whose names start
// with prefix, read from the source so these tests do not depend on the
// package compiling.
func goStringConsts(t *testing.T, path, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					out[n.Name] = v
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no string constants named %s*", path, prefix)
	}
	return out
}

// goFuncStrings returns every string literal in the body of the function
// (or method) named name in a Go file.
func goFuncStrings(t *testing.T, path, name string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != name {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, _ := strconv.Unquote(lit.Value)
				out[v] = true
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no function %s with string literals", path, name)
	}
	return out
}

// evalExpr evaluates e (literals, locals of m, for-expressions, join)
// to a list or a single string.
func evalExpr(t *testing.T, m *module, e hclsyntax.Expression) cty.Value {
	t.Helper()
	return evalWithVars(t, m, e, nil, nil)
}

// evalWithVars evaluates e like evalExpr, reading var.NAME from vars or
// else the variable's default, each.key and each.value from each, with the
// few functions the locals call.
func evalWithVars(t *testing.T, m *module, e hclsyntax.Expression, vars, each map[string]cty.Value) cty.Value {
	t.Helper()
	locals := map[string]cty.Value{}
	inputs := map[string]cty.Value{}
	for _, tr := range e.Variables() {
		name := tr[1].(hcl.TraverseAttr).Name
		switch tr.RootName() {
		case "local":
			a, ok := m.Locals[name]
			if !ok {
				t.Fatalf("%s: local.%s is not declared", tr.SourceRange(), name)
			}
			locals[name] = evalWithVars(t, m, a.Expr, vars, nil)
		case "var":
			if v, ok := vars[name]; ok {
				inputs[name] = v
				continue
			}
			b, ok := m.Variables[name]
			if !ok {
				t.Fatalf("%s: var.%s is not declared", tr.SourceRange(), name)
			}
			d, ok := b.Body.Attributes["default"]
			if !ok {
				t.Fatalf("%s: var.%s has no default: the test must give it a value", tr.SourceRange(), name)
			}
			inputs[name] = evalWithVars(t, m, d.Expr, nil, nil)
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"local": cty.ObjectVal(locals), "var": cty.ObjectVal(inputs), "each": cty.ObjectVal(each)},
		Functions: map[string]function.Function{
			"join": stdlib.JoinFunc, "jsonencode": stdlib.JSONEncodeFunc,
			"merge": stdlib.MergeFunc, "ceil": stdlib.CeilFunc, "replace": stdlib.ReplaceFunc,
		},
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: evaluate %s: %s", e.Range(), sourceText(e.Range()), diags.Error())
	}
	return v
}

func ctyStrings(v cty.Value) []string {
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, s := it.Element()
		out = append(out, s.AsString())
	}
	return out
}

// templateArgs returns the object passed to templatefile(config.yaml.tftpl, ...) in the example.
func templateArgs(t *testing.T) *hclsyntax.ObjectConsExpr {
	t.Helper()
	m := mustLoad(t, exampleDir)
	var args *hclsyntax.ObjectConsExpr
	for _, f := range m.Files {
		hclsyntax.VisitAll(f, func(n hclsyntax.Node) hcl.Diagnostics {
			if c, ok := n.(*hclsyntax.FunctionCallExpr); ok && c.Name == "templatefile" && len(c.Args) == 2 {
				if s, _ := shape(c.Args[0]); s == "${}/config.yaml.tftpl" {
					args, _ = c.Args[1].(*hclsyntax.ObjectConsExpr)
				}
			}
			return nil
		})
	}
	if args == nil {
		t.Fatalf("%s: no templatefile(\"${path.module}/config.yaml.tftpl\", {...}) call", exampleDir)
	}
	return args
}

func objectKeys(o *hclsyntax.ObjectConsExpr) []string {
	var keys []string
	for _, it := range o.Items {
		if k, ok := literalString(it.KeyExpr); ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// renderConfig renders the example's config template the way templatefile
// does (HCL's template language), with vars.
func renderConfig(t *testing.T, vars map[string]cty.Value) string {
	t.Helper()
	src, err := os.ReadFile(configTemplate)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, diags := hclsyntax.ParseTemplate(src, configTemplate, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse %s: %s", configTemplate, diags.Error())
	}
	ctx := &hcl.EvalContext{Variables: vars, Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc}}
	v, diags := tmpl.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("render %s: %s", configTemplate, diags.Error())
	}
	return v.AsString()
}

// sampleConfigVars are the values main.tf passes, for one environment.
func sampleConfigVars(env string, webhook bool) map[string]cty.Value {
	mm := map[string]string{"sandbox": "mm_SANDBOX000000001", "production": "mm_PRODUCTION000001"}[env]
	hook := cty.NullVal(cty.Object(map[string]cty.Type{
		"endpoint_id": cty.String, "secret": cty.String, "path": cty.String, "policy": cty.String, "owners": cty.List(cty.String),
	}))
	if webhook {
		hook = cty.ObjectVal(map[string]cty.Value{
			"endpoint_id": cty.StringVal("we_" + strings.ToUpper(env[:4]) + "SECURITY000000000001"),
			"secret":      cty.StringVal("lakirotator/" + env + "/security-webhook"),
			"path":        cty.StringVal("/v1/lakiconnect/events/" + env + "/" + mm),
			"policy":      cty.StringVal("webhooks"),
			"owners":      cty.ListVal([]cty.Value{cty.StringVal("payments-security")}),
		})
	}
	return map[string]cty.Value{
		"environment":          cty.StringVal(env),
		"region":               cty.StringVal("eu-west-1"),
		"lakiconnect_base_url": cty.StringVal("https://" + env + ".api.lakiconnect.example/v1"),
		"policies_dir":         cty.StringVal("/etc/lakirotator/policies"),
		"http_port":            cty.NumberIntVal(8080),
		"log_level":            cty.StringVal("info"),
		"event_bus":            cty.StringVal("lakirotator-" + env + "-consumers"),
		"lease_table":          leaseTable(env),
		"audit": cty.ObjectVal(map[string]cty.Value{
			"file":       cty.StringVal("/var/lib/lakirotator/audit.jsonl"),
			"bucket":     cty.StringVal("acme-lakirotator-audit-" + env),
			"prefix":     cty.StringVal(env + "/"),
			"kms_key_id": cty.StringVal("alias/lakirotator-" + env + "-audit"),
		}),
		"master_merchants": cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"id":                    cty.StringVal(mm),
			"management_key_secret": cty.StringVal("lakirotator/" + env + "/management-key"),
			"management_key_policy": cty.StringVal("rotator-management-key"),
			"management_key_owners": cty.TupleVal([]cty.Value{cty.StringVal("payments-security")}),
			"security_webhook":      hook,
		})}),
	}
}

// leaseTable is what main.tf passes: production runs two tasks sharing a
// lease, sandbox one task without.
func leaseTable(env string) cty.Value {
	if env == "production" {
		return cty.StringVal("lakirotator-production-lease")
	}
	return cty.NullVal(cty.String)
}

func loadImagePolicies(t *testing.T) *policies.Set {
	t.Helper()
	set, err := policies.LoadDir(imagePoliciesSource)
	if err != nil {
		t.Fatalf("load the image's policies: %v", err)
	}
	return set
}

// parseWithPolicies runs the daemon's own config validation, with the
// policies the image carries.
func parseWithPolicies(t *testing.T, set *policies.Set, data string) (*config.Config, error) {
	t.Helper()
	return config.Parse("$LAKIROTATOR_CONFIG", []byte(data),
		config.WithKnownPolicies(func(name string) bool { _, ok := set.Get(name); return ok }),
		config.WithPolicyCheck(func(name string, kind inventory.Kind, env laki.Environment) error {
			p, ok := set.ForEnvironment(name, env)
			if !ok {
				return fmt.Errorf("policy %s is not for %s", name, env)
			}
			if p.Kind != kind {
				return fmt.Errorf("policy %s is for %s, not %s", name, p.Kind, kind)
			}
			return nil
		}))
}

// The deployment's config must pass the daemon's own validation.
func TestExampleConfigPassesDaemonValidation(t *testing.T) {
	set := loadImagePolicies(t)
	// main.tf passes exactly the values the template uses.
	vars := sampleConfigVars("sandbox", true)
	var want []string
	for k := range vars {
		want = append(want, k)
	}
	sort.Strings(want)
	if got := objectKeys(templateArgs(t)); !slices.Equal(got, want) {
		t.Errorf("main.tf passes %v to config.yaml.tftpl; the template (and this test) use %v", got, want)
	}
	src, _ := os.ReadFile(configTemplate)
	tmpl, _ := hclsyntax.ParseTemplate(src, configTemplate, hcl.InitialPos)
	for _, tr := range tmpl.Variables() {
		if _, ok := vars[tr.RootName()]; !ok {
			t.Errorf("%s: %s is not passed by main.tf", tr.SourceRange(), tr.RootName())
		}
	}

	for _, env := range []string{"sandbox", "production"} {
		for _, webhook := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/webhook=%v", env, webhook), func(t *testing.T) {
				out := renderConfig(t, sampleConfigVars(env, webhook))
				cfg, err := parseWithPolicies(t, set, out)
				if err != nil {
					t.Fatalf("the rendered config fails the daemon's validation:\n%v\n--- rendered:\n%s", err, out)
				}
				if got := cfg.EnvironmentNames(); len(got) != 1 || string(got[0]) != env {
					t.Errorf("environments = %v, want only %s", got, env)
				}
				if cfg.HTTP.Listen != ":8080" || !cfg.HTTP.AllowPlaintext || len(cfg.HTTP.Tokens) != 0 {
					t.Errorf("http = listen %q allow_plaintext %v tokens %d; want :8080, plaintext inside the VPC, no control tokens",
						cfg.HTTP.Listen, cfg.HTTP.AllowPlaintext, len(cfg.HTTP.Tokens))
				}
				if cfg.Log.Format != config.LogJSON {
					t.Errorf("log.format = %q; the alarms' metric filters need json", cfg.Log.Format)
				}
				if cfg.PoliciesDir != "/etc/lakirotator/policies" {
					t.Errorf("policies_dir = %q", cfg.PoliciesDir)
				}
				if a := cfg.Audit.Anchor; cfg.Audit.File == "" || a == nil || a.Bucket == "" || a.KMSKeyID == "" || a.Interval.Std() != 5*time.Minute {
					t.Errorf("audit = %+v (anchor %+v); want a file shipped to the audit bucket with signed digests every 5m", cfg.Audit, a)
				}
				if env == "production" && (cfg.HA == nil || cfg.HA.Table != "lakirotator-production-lease" || cfg.HA.Kind != config.HAKindDynamoDB) {
					t.Errorf("ha = %+v; production runs two tasks, which must share the lease table", cfg.HA)
				}
				if env == "sandbox" && cfg.HA != nil {
					t.Errorf("ha = %+v; sandbox runs one task", cfg.HA)
				}
				if !cfg.Discovery.Enabled {
					t.Error("discovery is off: the managed-secrets tags would be ignored")
				}
				mm, ok := cfg.MasterMerchant(laki.Environment(env), sampleConfigVars(env, false)["master_merchants"].Index(cty.NumberIntVal(0)).GetAttr("id").AsString())
				if !ok || mm.ManagementKey.Secret != "lakirotator/"+env+"/management-key" {
					t.Errorf("management key of the master merchant: %+v", mm.ManagementKey)
				}
				if webhook && (mm.SecurityWebhook == nil || mm.SecurityWebhook.Path != "/v1/lakiconnect/events/"+env+"/"+mm.ID) {
					t.Errorf("security webhook: %+v", mm.SecurityWebhook)
				}
			})
		}
	}
}

// The test above must be able to fail: a rendered config the daemon would
// refuse is refused here too.
func TestConfigValidationCatchesBadRenders(t *testing.T) {
	set := loadImagePolicies(t)
	good := renderConfig(t, sampleConfigVars("production", true))
	for name, bad := range map[string]string{
		"unknown field":  strings.Replace(good, "store:\n", "metrics:\n  listen: \":9464\"\nstore:\n", 1),
		"unknown policy": strings.Replace(good, "\"rotator-management-key\"", "\"management-key\"", 1),
		"wrong kind":     strings.Replace(good, "\"rotator-management-key\"", "\"webhooks\"", 1),
	} {
		if bad == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if _, err := parseWithPolicies(t, set, bad); err == nil {
			t.Errorf("%s: the daemon's validation accepted:\n%s", name, bad)
		}
	}
}

// Every policy the example names exists in the image's policies, and the
// dead-man window is the longest max_age among them.
func TestExamplePoliciesExistInTheImage(t *testing.T) {
	set := loadImagePolicies(t)
	m := mustLoad(t, exampleDir)
	names := evalExpr(t, m, m.Locals["policy_names"].Expr)
	var used []string
	for it := names.ElementIterator(); it.Next(); {
		_, v := it.Element()
		if v.Type() == cty.String {
			used = append(used, v.AsString())
			continue
		}
		used = append(used, ctyStrings(v)...)
	}
	var longest float64
	for _, n := range used {
		p, ok := set.Get(n)
		if !ok {
			t.Errorf("%s: policy %q is not among the image's policies (%v)", exampleDir, n, set.Names())
			continue
		}
		longest = max(longest, p.MaxAge.Hours())
	}
	got, _ := evalExpr(t, m, m.Locals["longest_max_age_hours"].Expr).AsBigFloat().Float64()
	if got != longest {
		t.Errorf("local.longest_max_age_hours = %v; the longest max_age of the policies used is %v h", got, longest)
	}
	if dir, _ := evalExpr(t, m, m.Locals["policies_dir"].Expr).AsString(), 0; !dockerfileCopiesTo(t, dir, "policies/examples") {
		t.Errorf("the Dockerfile does not copy policies/examples to %s, the config's policies_dir", dir)
	}
}

// dockerfileCopiesTo reports whether the final stage copies the policies
// (by default from src) to dir.
func dockerfileCopiesTo(t *testing.T, dir, src string) bool {
	t.Helper()
	ins, err := parseDockerfile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for _, in := range finalStage(ins) {
		switch in.Cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.Args, "=")
			args[k] = v
		case "COPY":
			f := strings.Fields(in.Args)
			if len(f) != 2 {
				continue
			}
			from := os.Expand(f[0], func(k string) string { return args[k] })
			if strings.TrimSuffix(from, "/") == src && strings.TrimSuffix(f[1], "/") == dir {
				return true
			}
		}
	}
	return false
}

// ignore_tags must cover exactly the engine's bookkeeping tags.
func TestIgnoreTagsAreTheEngineBookkeepingTags(t *testing.T) {
	var want []string
	for _, v := range goStringConsts(t, "../rotator/engine.go", "Tag") {
		want = append(want, v)
	}
	sort.Strings(want)
	m := mustLoad(t, exampleDir)
	found := false
	for _, b := range m.Other {
		if b.Type != "provider" || b.Labels[0] != "aws" {
			continue
		}
		for _, it := range b.Body.Blocks {
			if it.Type != "ignore_tags" {
				continue
			}
			found = true
			if _, ok := it.Body.Attributes["key_prefixes"]; ok {
				t.Errorf("%s: ignore_tags sets key_prefixes; list the engine's tag keys instead", it.DefRange())
			}
			a, ok := it.Body.Attributes["keys"]
			if !ok {
				t.Fatalf("%s: ignore_tags has no keys", it.DefRange())
			}
			got := ctyStrings(evalExpr(t, m, a.Expr))
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: ignore_tags keys = %v; rotator/engine.go's Tag* constants are %v", a.SrcRange, got, want)
			}
			for _, k := range got {
				if slices.Contains(discoveryTagKeys(), k) {
					t.Errorf("%s: ignore_tags hides the discovery tag %s from Terraform", a.SrcRange, k)
				}
			}
		}
	}
	if !found {
		t.Fatalf("%s: the aws provider has no ignore_tags block", exampleDir)
	}
}

var filterField = regexp.MustCompile(`\$\.([A-Za-z_]+)`)

// The alarms read only fields the daemon writes, and the 401/403 alarm
// covers every auth code the Go code raises.
func TestAlarmsMatchTheDaemonsLogLines(t *testing.T) {
	m := mustLoad(t, "modules/alarms")

	var codes []string
	for _, v := range goStringConsts(t, "../policies/authwatch/authwatch.go", "Reason") {
		codes = append(codes, v)
	}
	security, err := os.ReadFile("../daemon/security.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(security), `"auth_failure_spike"`) {
		t.Fatal("daemon/security.go no longer raises auth_failure_spike: update the alarm's codes")
	}
	codes = append(codes, "auth_failure_spike")
	if wiring, err := os.ReadFile("../daemon/auditwiring.go"); err != nil || !strings.Contains(string(wiring), `"audit_unwritable"`) {
		t.Fatalf("daemon/auditwiring.go no longer raises audit_unwritable (%v): update the audit_unwritable filter", err)
	}
	sort.Strings(codes)
	got := ctyStrings(evalExpr(t, m, m.Locals["auth_reason_codes"].Expr))
	sort.Strings(got)
	if !slices.Equal(got, codes) {
		t.Errorf("modules/alarms local.auth_reason_codes = %v; the Go code raises %v", got, codes)
	}

	// The fields of the "lifecycle event" and "schedule checked" lines.
	written := map[string]bool{"msg": true, "level": true, "time": true}
	logged := goFuncStrings(t, "../daemon/observe.go", "Emit")
	for s := range logged {
		written[s] = true
	}
	for _, src := range [][2]string{{"../audit/writer.go", "Emit"}, {"../audit/anchor/shipper.go", "Run"}} {
		for s := range goFuncStrings(t, src[0], src[1]) {
			logged[s] = true
		}
	}
	sched := goFuncStrings(t, "../daemon/schedule.go", "logScheduleCheck")
	for s := range sched {
		written[s] = true
	}
	if !sched["schedule checked"] || !sched["overdue"] {
		t.Fatal("daemon/schedule.go's logScheduleCheck no longer logs \"schedule checked\" with overdue")
	}

	filters := evalExpr(t, m, m.Locals["metric_filters"].Expr)
	metrics := map[string]bool{}
	for it := filters.ElementIterator(); it.Next(); {
		k, f := it.Element()
		pattern := f.GetAttr("pattern").AsString()
		metrics[f.GetAttr("metric").AsString()] = true
		if len(pattern) > 1024 {
			t.Errorf("metric filter %s: pattern is %d characters; CloudWatch allows 1024", k.AsString(), len(pattern))
		}
		for _, field := range filterField.FindAllStringSubmatch(pattern+" "+f.GetAttr("value").AsString(), -1) {
			if !written[field[1]] {
				t.Errorf("metric filter %s reads $.%s, which the daemon never logs", k.AsString(), field[1])
			}
		}
		if strings.Contains(pattern, "msg = ") {
			msg := regexp.MustCompile(`msg = "([^"]+)"`).FindStringSubmatch(pattern)
			if msg == nil || !(sched[msg[1]] || logged[msg[1]]) {
				t.Errorf("metric filter %s matches a msg the daemon never logs: %s", k.AsString(), pattern)
			}
		}
		if k.AsString() == "auth_alerts_by_code" || k.AsString() == "auth_alerts_by_reason" {
			for _, c := range codes {
				if !strings.Contains(pattern, `"`+c+`"`) {
					t.Errorf("metric filter %s does not match %s: %s", k.AsString(), c, pattern)
				}
			}
		}
	}
	// Every alarm's metric is fed by a filter, with and without the dead-man
	// alarm (which exists only when the longest schedule fits 7 days).
	unfed := map[string]bool{}
	for _, hours := range []int64{24, 24 * 30} {
		for key, b := range m.Resources {
			if !strings.HasPrefix(key, "aws_cloudwatch_metric_alarm.") {
				continue
			}
			for id, name := range resourceInstances(t, m, b, "metric_name", alarmTestVars(hours)) {
				if !metrics[name] {
					unfed[fmt.Sprintf("%s: %s%s reads metric %q, which no metric filter publishes", b.DefRange(), key, id, name)] = true
				}
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(unfed)) {
		t.Error(p)
	}
}

// alarmTestVars are the alarms module's required inputs, as the example
// sets them for the sandbox.
func alarmTestVars(longestScheduleHours int64) map[string]cty.Value {
	return map[string]cty.Value{
		"name":                   cty.StringVal("lakirotator-sandbox"),
		"environment":            cty.StringVal("sandbox"),
		"longest_schedule_hours": cty.NumberIntVal(longestScheduleHours),
	}
}

// resourceInstances evaluates the attribute attr of resource block b for
// each of its instances, by instance key ("" for a single resource, `["k"]`
// for a for_each instance).
func resourceInstances(t *testing.T, m *module, b *hclsyntax.Block, attr string, vars map[string]cty.Value) map[string]string {
	t.Helper()
	a, ok := b.Body.Attributes[attr]
	if !ok {
		t.Fatalf("%s: no %s", b.DefRange(), attr)
	}
	out := map[string]string{}
	fe, ok := b.Body.Attributes["for_each"]
	if !ok {
		out[""] = evalWithVars(t, m, a.Expr, vars, nil).AsString()
		return out
	}
	for it := evalWithVars(t, m, fe.Expr, vars, nil).ElementIterator(); it.Next(); {
		k, v := it.Element()
		each := map[string]cty.Value{"key": k, "value": v}
		out[fmt.Sprintf("[%q]", k.AsString())] = evalWithVars(t, m, a.Expr, vars, each).AsString()
	}
	return out
}

// The alarms the module makes are the ones its README lists, and every
// moved block moves an old alarm onto one of them.
func TestAlarmsAreTheDocumentedOnes(t *testing.T) {
	const dir = "modules/alarms"
	m := mustLoad(t, dir)
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, row := range regexp.MustCompile("(?m)^\\| `<name>-([a-z-]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented = append(documented, "lakirotator-sandbox-"+row[1])
	}
	sort.Strings(documented)
	if len(documented) < 5 {
		t.Fatalf("%s/README.md lists %d alarms in its table; the table's rows are | `<name>-...` | ... |", dir, len(documented))
	}
	alarms := m.Resources["aws_cloudwatch_metric_alarm.daemon"]
	if alarms == nil {
		t.Fatalf("%s: no aws_cloudwatch_metric_alarm.daemon", dir)
	}
	for _, tc := range []struct {
		hours   int64
		deadMan bool
	}{{24, true}, {24 * 7, true}, {24*7 + 1, false}} {
		names := map[string]string{}
		for key, b := range m.Resources {
			if strings.HasPrefix(key, "aws_cloudwatch_metric_alarm.") {
				for id, name := range resourceInstances(t, m, b, "alarm_name", alarmTestVars(tc.hours)) {
					names[name] = key + id
				}
			}
		}
		want := slices.Clone(documented)
		if !tc.deadMan {
			want = slices.DeleteFunc(want, func(n string) bool { return strings.HasSuffix(n, "-no-successful-rotation") })
		}
		got := slices.Sorted(maps.Keys(names))
		if !slices.Equal(got, want) {
			t.Errorf("longest_schedule_hours=%d: the module makes the alarms %v; want %v (README.md, the dead-man alarm only within 7 days)", tc.hours, got, want)
		}
	}

	instances := resourceInstances(t, m, alarms, "alarm_name", alarmTestVars(24))
	from := map[string]bool{}
	for _, b := range m.Moved {
		f, errFrom := parseAddress(b.Body.Attributes["from"].Expr)
		to, errTo := parseAddress(b.Body.Attributes["to"].Expr)
		if errFrom != nil || errTo != nil {
			t.Errorf("%s: %v %v", b.DefRange(), errFrom, errTo)
			continue
		}
		if from[f.String()] {
			t.Errorf("%s: %s is moved twice", b.DefRange(), f)
		}
		from[f.String()] = true
		id := strings.TrimPrefix(to.String(), to.Declared)
		if to.Declared != "aws_cloudwatch_metric_alarm.daemon" || instances[id] == "" {
			t.Errorf("%s: moved to %s, which is not an alarm of local.alarms", b.DefRange(), to)
			continue
		}
		// The old blocks were named after the alarm they made.
		if old := strings.TrimPrefix(f.Declared, "aws_cloudwatch_metric_alarm."); "lakirotator-sandbox-"+strings.ReplaceAll(old, "_", "-") != instances[id] {
			t.Errorf("%s: moves %s onto the alarm %s", b.DefRange(), f, instances[id])
		}
	}
}
