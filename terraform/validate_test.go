package terraform_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// schema is what the AWS provider requires of a resource or data source
// type (from its documentation): required arguments, and required arguments
// of nested blocks by block type.
type schema struct {
	Required []string
	Blocks   map[string][]string
}

// providerSchemas covers every type these modules use; a new type must be
// added here with its required arguments, or the test fails.
func providerSchemas() map[string]schema {
	return map[string]schema{
		"data.aws_caller_identity": {},
		"data.aws_partition":       {},
		"data.aws_region":          {},
		"data.aws_iam_policy_document": {Blocks: map[string][]string{
			"principals": {"type", "identifiers"},
			"condition":  {"test", "variable", "values"},
		}},
		"aws_kms_key": {},
		"aws_dynamodb_table": {Required: []string{"name", "hash_key"}, Blocks: map[string][]string{
			"attribute": {"name", "type"},
			"ttl":       {"attribute_name"},
		}},
		"aws_kms_alias":                       {Required: []string{"target_key_id"}},
		"aws_secretsmanager_secret":           {},
		"aws_secretsmanager_secret_policy":    {Required: []string{"secret_arn", "policy"}},
		"aws_iam_role":                        {Required: []string{"assume_role_policy"}},
		"aws_iam_role_policy":                 {Required: []string{"role", "policy"}},
		"aws_security_group":                  {},
		"aws_vpc_security_group_egress_rule":  {Required: []string{"security_group_id", "ip_protocol"}},
		"aws_vpc_security_group_ingress_rule": {Required: []string{"security_group_id", "ip_protocol"}},
		"aws_vpc_endpoint":                    {Required: []string{"vpc_id", "service_name"}},
		"aws_cloudwatch_log_group":            {},
		"aws_ecs_cluster": {Required: []string{"name"}, Blocks: map[string][]string{
			"setting": {"name", "value"},
		}},
		"aws_ecs_task_definition": {Required: []string{"family", "container_definitions"}},
		"aws_ecs_service": {Required: []string{"name"}, Blocks: map[string][]string{
			"network_configuration":      {"subnets"},
			"deployment_circuit_breaker": {"enable", "rollback"},
		}},
		"aws_cloudwatch_event_bus":    {Required: []string{"name"}},
		"aws_cloudwatch_event_rule":   {},
		"aws_cloudwatch_event_target": {Required: []string{"rule", "arn"}},
		"aws_sqs_queue":               {},
		"aws_sqs_queue_policy":        {Required: []string{"queue_url", "policy"}},
		"aws_sns_topic":               {},
		"aws_sns_topic_subscription":  {Required: []string{"topic_arn", "protocol", "endpoint"}},
		"aws_cloudwatch_log_metric_filter": {Required: []string{"name", "pattern", "log_group_name", "metric_transformation"}, Blocks: map[string][]string{
			"metric_transformation": {"name", "namespace", "value"},
		}},
		"aws_cloudwatch_metric_alarm": {Required: []string{"alarm_name", "comparison_operator", "evaluation_periods"}},
		"aws_lb":                      {},
		"aws_s3_bucket":               {},
		"aws_s3_bucket_versioning": {Required: []string{"bucket", "versioning_configuration"}, Blocks: map[string][]string{
			"versioning_configuration": {"status"},
		}},
		"aws_s3_bucket_object_lock_configuration":            {Required: []string{"bucket"}},
		"aws_s3_bucket_public_access_block":                  {Required: []string{"bucket"}},
		"aws_s3_bucket_ownership_controls":                   {Required: []string{"bucket", "rule"}, Blocks: map[string][]string{"rule": {"object_ownership"}}},
		"aws_s3_bucket_server_side_encryption_configuration": {Required: []string{"bucket", "rule"}},
		"aws_s3_bucket_policy":                               {Required: []string{"bucket", "policy"}},
		// port, protocol and vpc_id are required for target_type ip.
		"aws_lb_target_group": {Required: []string{"port", "protocol", "vpc_id"}},
		"aws_lb_listener": {Required: []string{"load_balancer_arn", "default_action"}, Blocks: map[string][]string{
			"default_action": {"type"},
			"fixed_response": {"content_type"},
		}},
		"aws_lb_listener_rule": {Required: []string{"listener_arn", "action", "condition"}, Blocks: map[string][]string{
			"action": {"type"},
		}},
	}
}

// terraformFunctions are Terraform 1.5's built-in functions that this code may call.
func terraformFunctions() map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(`abs alltrue anytrue can ceil chomp cidrhost cidrsubnet coalesce coalescelist
		compact concat contains distinct element endswith flatten floor format formatlist join jsondecode
		jsonencode keys length lookup lower max merge min one range regex regexall replace reverse setintersection
		setsubtract setunion sort split startswith strcontains substr templatefile timeadd title tolist tomap
		tonumber toset tostring trim trimprefix trimspace trimsuffix try upper values yamldecode yamlencode zipmap`) {
		m[f] = true
	}
	return m
}

// hasArg reports whether body sets name as an attribute or a block (or a
// dynamic block of that type).
func hasArg(body *hclsyntax.Body, name string) bool {
	if _, ok := body.Attributes[name]; ok {
		return true
	}
	for _, b := range body.Blocks {
		if b.Type == name || (b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == name) {
			return true
		}
	}
	return false
}

// nestedBodies returns the bodies of blocks of type typ in body, looking
// through dynamic blocks' content.
func nestedBodies(body *hclsyntax.Body, typ string) []*hclsyntax.Body {
	var out []*hclsyntax.Body
	for _, b := range body.Blocks {
		switch {
		case b.Type == typ:
			out = append(out, b.Body)
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ:
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					out = append(out, c.Body)
				}
			}
		}
	}
	return out
}

func TestRequiredArguments(t *testing.T) {
	schemas := providerSchemas()
	for _, dir := range moduleDirs(t) {
		m := mustLoad(t, dir)
		check := func(key string, b *hclsyntax.Block) {
			s, ok := schemas[key]
			if !ok {
				t.Errorf("%s: %s is not in providerSchemas: add it with its required arguments from the AWS provider docs", b.DefRange(), key)
				return
			}
			for _, r := range s.Required {
				if !hasArg(b.Body, r) {
					t.Errorf("%s: %s %q is missing the required argument %q", b.DefRange(), key, b.Labels[1], r)
				}
			}
			for typ, req := range s.Blocks {
				for _, nb := range nestedBodies(b.Body, typ) {
					for _, r := range req {
						if !hasArg(nb, r) {
							t.Errorf("%s: %s %q: block %s is missing the required argument %q", nb.SrcRange, key, b.Labels[1], typ, r)
						}
					}
				}
			}
		}
		for k, b := range m.Resources {
			check(strings.SplitN(k, ".", 2)[0], b)
		}
		for k, b := range m.Data {
			check("data."+strings.SplitN(k, ".", 2)[0], b)
		}
	}
}

// scope is what a reference may name where it appears.
type scope struct {
	eachOK, countOK bool
	iterators       map[string]bool // dynamic block iterators
	selfVar         string          // in a variable's validation: its own name
}

// referenceProblems checks every reference and function call in m: each
// must name something declared (what `terraform validate` would report).
// load returns the module a local module source points at.
func referenceProblems(m *module, load func(dir string) (*module, error)) []string {
	var problems []string
	funcs := terraformFunctions()
	bad := func(r hcl.Range, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s", r, fmt.Sprintf(format, args...)))
	}
	checkTraversal := func(tr hcl.Traversal, sc scope) {
		r := tr.SourceRange()
		root := tr.RootName()
		attr := func(i int) string {
			if len(tr) > i {
				if a, ok := tr[i].(hcl.TraverseAttr); ok {
					return a.Name
				}
			}
			return ""
		}
		switch root {
		case "var":
			if _, ok := m.Variables[attr(1)]; !ok {
				bad(r, "reference to undeclared variable %q", attr(1))
			} else if sc.selfVar != "" && attr(1) != sc.selfVar {
				bad(r, "a validation of var.%s may refer only to var.%s (Terraform 1.5)", sc.selfVar, sc.selfVar)
			}
		case "local":
			if _, ok := m.Locals[attr(1)]; !ok {
				bad(r, "reference to undeclared local %q", attr(1))
			}
		case "data":
			if _, ok := m.Data[attr(1)+"."+attr(2)]; !ok {
				bad(r, "reference to undeclared data source data.%s.%s", attr(1), attr(2))
			}
		case "module":
			call, ok := m.Modules[attr(1)]
			if !ok {
				bad(r, "reference to undeclared module %q", attr(1))
				return
			}
			// module.NAME[KEY].OUTPUT or module.NAME.OUTPUT
			out := attr(2)
			if out == "" {
				out = attr(3)
			}
			if out == "" {
				return
			}
			if child, err := load(moduleSource(m, call)); err == nil {
				if _, ok := child.Outputs[out]; !ok {
					bad(r, "module %q has no output %q", attr(1), out)
				}
			}
		case "each":
			if !sc.eachOK {
				bad(r, "each.%s outside a block with for_each", attr(1))
			}
		case "count":
			if !sc.countOK {
				bad(r, "count.%s outside a block with count", attr(1))
			}
		case "path", "terraform", "self":
		default:
			if sc.iterators[root] {
				return
			}
			if _, ok := m.Resources[root+"."+attr(1)]; !ok {
				bad(r, "reference to undeclared resource %s.%s", root, attr(1))
			}
		}
	}
	var walkBody func(body *hclsyntax.Body, sc scope)
	checkExpr := func(e hclsyntax.Expression, sc scope) {
		for _, tr := range e.Variables() {
			checkTraversal(tr, sc)
		}
		hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
			if f, ok := n.(*hclsyntax.FunctionCallExpr); ok && !funcs[f.Name] {
				bad(f.NameRange, "call to unknown function %q", f.Name)
			}
			return nil
		})
	}
	walkBody = func(body *hclsyntax.Body, sc scope) {
		for _, a := range body.Attributes {
			checkExpr(a.Expr, sc)
		}
		for _, b := range body.Blocks {
			inner := sc
			if b.Type == "dynamic" && len(b.Labels) == 1 {
				if fe, ok := b.Body.Attributes["for_each"]; ok {
					checkExpr(fe.Expr, sc)
				}
				it := b.Labels[0]
				if a, ok := b.Body.Attributes["iterator"]; ok {
					if tr, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr); ok {
						it = tr.Traversal.RootName()
					}
				}
				inner.iterators = map[string]bool{it: true}
				for k := range sc.iterators {
					inner.iterators[k] = true
				}
				for _, c := range b.Body.Blocks {
					walkBody(c.Body, inner)
				}
				continue
			}
			walkBody(b.Body, inner)
		}
	}
	for _, f := range m.Files {
		for _, b := range f.Blocks {
			sc := scope{}
			switch b.Type {
			case "variable":
				for _, v := range b.Body.Blocks {
					if v.Type == "validation" {
						walkBody(v.Body, scope{selfVar: b.Labels[0]})
					}
				}
				if d, ok := b.Body.Attributes["default"]; ok {
					if len(d.Expr.Variables()) > 0 {
						bad(d.SrcRange, "a variable's default must be a constant")
					}
				}
				continue
			case "terraform":
				continue
			case "moved":
				problems = append(problems, movedProblems(m, b)...)
				continue
			case "resource", "data", "module":
				_, sc.eachOK = b.Body.Attributes["for_each"]
				_, sc.countOK = b.Body.Attributes["count"]
			}
			walkBody(b.Body, sc)
		}
	}
	sort.Strings(problems)
	return problems
}

// resourceAddress is the address in a moved block: a resource (or module
// call) and, optionally, one instance's key.
type resourceAddress struct {
	Declared string    // key of m.Resources ("TYPE.NAME"), or "module.NAME"
	Key      cty.Value // cty.NilVal for the whole resource
}

func (a resourceAddress) String() string {
	switch {
	case a.Key == cty.NilVal:
		return a.Declared
	case a.Key.Type() == cty.String:
		return fmt.Sprintf("%s[%q]", a.Declared, a.Key.AsString())
	default:
		return fmt.Sprintf("%s[%s]", a.Declared, a.Key.AsBigFloat().String())
	}
}

func parseAddress(e hclsyntax.Expression) (resourceAddress, error) {
	tr, diags := hcl.AbsTraversalForExpr(e)
	if diags.HasErrors() || len(tr) < 2 || len(tr) > 3 {
		return resourceAddress{}, fmt.Errorf("%s is not a resource address (TYPE.NAME or TYPE.NAME[KEY])", sourceText(e.Range()))
	}
	name, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return resourceAddress{}, fmt.Errorf("%s is not a resource address", sourceText(e.Range()))
	}
	a := resourceAddress{Declared: tr.RootName() + "." + name.Name}
	if len(tr) == 3 {
		ix, ok := tr[2].(hcl.TraverseIndex)
		if !ok || !(ix.Key.Type() == cty.String || ix.Key.Type() == cty.Number) {
			return resourceAddress{}, fmt.Errorf("%s: an instance key is a string or a number", sourceText(e.Range()))
		}
		a.Key = ix.Key
	}
	return a, nil
}

// movedProblems checks a moved block as `terraform validate` and plan
// would: from and to are addresses of the same type; to is declared, with
// for_each for a string key and count for a number key; from is no longer
// declared, unless the move is between two instances of one resource.
func movedProblems(m *module, b *hclsyntax.Block) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: moved: %s", b.DefRange(), fmt.Sprintf(format, args...)))
	}
	var addr [2]resourceAddress
	for i, name := range []string{"from", "to"} {
		a, ok := b.Body.Attributes[name]
		if !ok {
			bad("no %q address", name)
			return problems
		}
		var err error
		if addr[i], err = parseAddress(a.Expr); err != nil {
			bad("%s: %v", name, err)
			return problems
		}
	}
	from, to := addr[0], addr[1]
	declared := func(a resourceAddress) (*hclsyntax.Block, bool) {
		if name, ok := strings.CutPrefix(a.Declared, "module."); ok {
			c, ok := m.Modules[name]
			return c, ok
		}
		r, ok := m.Resources[a.Declared]
		return r, ok
	}
	if strings.SplitN(from.Declared, ".", 2)[0] != strings.SplitN(to.Declared, ".", 2)[0] {
		bad("from %s and to %s are of different types", from, to)
	}
	target, ok := declared(to)
	if !ok {
		bad("to %s: no such resource is declared", to)
	} else if to.Key != cty.NilVal {
		meta := "for_each"
		if to.Key.Type() == cty.Number {
			meta = "count"
		}
		if _, ok := target.Body.Attributes[meta]; !ok {
			bad("to %s: the key needs %s on %s", to, meta, to.Declared)
		}
	}
	if _, ok := declared(from); ok && from.Declared != to.Declared {
		bad("from %s is still declared: Terraform refuses to move an object that still exists", from)
	}
	if from.Declared == to.Declared && (from.Key == cty.NilVal || to.Key == cty.NilVal || from.Key.Equals(to.Key).True()) {
		bad("from %s and to %s are the same", from, to)
	}
	return problems
}

// moduleSource returns the directory a module call's local source points at.
func moduleSource(m *module, call *hclsyntax.Block) string {
	a, ok := call.Body.Attributes["source"]
	if !ok {
		return ""
	}
	s, _ := literalString(a.Expr)
	return filepath.Join(m.Dir, s)
}

func TestReferencesResolve(t *testing.T) {
	for _, dir := range moduleDirs(t) {
		for _, p := range referenceProblems(mustLoad(t, dir), loadModule) {
			t.Error(p)
		}
	}
}

func TestReferenceCheckCatchesMistakes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), `
variable "known" {
  type        = string
  description = "A declared variable."
}

locals {
  a = var.unknown
  b = local.nope
  c = aws_iam_role.missing.arn
  d = data.aws_region.missing.name
  e = each.key
  f = frobnicate(var.known)
  g = [for x in [1] : x]
}

resource "aws_iam_role" "r" {
  assume_role_policy = "{}"
  name               = count.index
}

resource "aws_iam_role" "s" {
  for_each           = {}
  assume_role_policy = "{}"
}

moved {
  from = aws_iam_role.old
  to   = aws_iam_role.gone
}

moved {
  from = aws_iam_role.s
  to   = aws_iam_role.r[1]
}

moved {
  from = aws_iam_role.older
  to   = aws_iam_role.r["one"]
}

moved {
  from = aws_iam_role.oldest
  to   = aws_kms_key.s
}

moved {
  from = aws_iam_role.kept[0]
  to   = aws_iam_role.s["kept"]
}
`)
	problems := strings.Join(referenceProblems(mustLoad(t, dir), loadModule), "\n")
	for _, want := range []string{
		`undeclared variable "unknown"`,
		`undeclared local "nope"`,
		`undeclared resource aws_iam_role.missing`,
		`undeclared data source data.aws_region.missing`,
		`each.key outside a block with for_each`,
		`unknown function "frobnicate"`,
		`count.index outside a block with count`,
		`to aws_iam_role.gone: no such resource is declared`,
		`from aws_iam_role.s is still declared`,
		`to aws_iam_role.r["one"]: the key needs for_each on aws_iam_role.r`,
		`from aws_iam_role.oldest and to aws_kms_key.s are of different types`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not mention %s; got:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, `"x"`) || strings.Contains(problems, "resource x.") {
		t.Errorf("a for-expression's own variable was reported:\n%s", problems)
	}
	if strings.Contains(problems, "kept") {
		t.Errorf("a valid move (from a removed resource's instance to a for_each instance) was reported:\n%s", problems)
	}
}

// moduleCallProblems checks every call of a local module: its arguments
// must be the child's variables, and every variable without a default set.
func moduleCallProblems(m *module) []string {
	meta := map[string]bool{"source": true, "version": true, "count": true, "for_each": true, "providers": true, "depends_on": true}
	var problems []string
	for name, call := range m.Modules {
		dir := moduleSource(m, call)
		child, err := loadModule(dir)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: module %q: source %s: %v", call.DefRange(), name, dir, err))
			continue
		}
		for arg, a := range call.Body.Attributes {
			if _, ok := child.Variables[arg]; !ok && !meta[arg] {
				problems = append(problems, fmt.Sprintf("%s: module %q has no input %q", a.SrcRange, name, arg))
			}
		}
		for v, b := range child.Variables {
			if _, hasDefault := b.Body.Attributes["default"]; hasDefault {
				continue
			}
			if _, set := call.Body.Attributes[v]; !set {
				problems = append(problems, fmt.Sprintf("%s: module %q: required input %q is not set", call.DefRange(), name, v))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func TestModuleCallsMatchModuleInputs(t *testing.T) {
	calls := 0
	for _, dir := range moduleDirs(t) {
		m := mustLoad(t, dir)
		calls += len(m.Modules)
		for _, p := range moduleCallProblems(m) {
			t.Error(p)
		}
	}
	if calls < 4 {
		t.Fatalf("found %d module calls; the example should call all four modules", calls)
	}
}

func TestModuleCallCheckCatchesMistakes(t *testing.T) {
	root := t.TempDir()
	child := filepath.Join(root, "child")
	parent := filepath.Join(root, "parent")
	writeFile(t, filepath.Join(child, "variables.tf"), `
variable "needed" {
  type        = string
  description = "Required."
}

variable "optional" {
  type        = string
  description = "Has a default."
  default     = "x"
}
`)
	writeFile(t, filepath.Join(parent, "main.tf"), `
module "c" {
  source = "../child"
  typo   = "y"
}
`)
	problems := strings.Join(moduleCallProblems(mustLoad(t, parent)), "\n")
	for _, want := range []string{`has no input "typo"`, `required input "needed" is not set`} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not mention %s; got:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, `"optional"`) {
		t.Errorf("an input with a default was reported as missing:\n%s", problems)
	}
}

func TestVariablesAndOutputsAreDescribed(t *testing.T) {
	for _, dir := range moduleDirs(t) {
		m := mustLoad(t, dir)
		if strings.HasPrefix(filepath.ToSlash(dir), "modules/") {
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Errorf("%s: every module needs a README of its inputs and outputs: %v", dir, err)
			}
			for name := range m.Variables {
				if !strings.Contains(string(readme), "`"+name+"`") {
					t.Errorf("%s/README.md does not list the input `%s`", dir, name)
				}
			}
			for name := range m.Outputs {
				if !strings.Contains(string(readme), "`"+name+"`") {
					t.Errorf("%s/README.md does not list the output `%s`", dir, name)
				}
			}
		}
		for name, b := range m.Variables {
			for _, arg := range []string{"type", "description"} {
				if _, ok := b.Body.Attributes[arg]; !ok {
					t.Errorf("%s: variable %q has no %s", b.DefRange(), name, arg)
				}
			}
			if a, ok := b.Body.Attributes["description"]; ok {
				if s, ok := shape(a.Expr); !ok || len(strings.TrimSpace(s)) < 10 {
					t.Errorf("%s: variable %q: the description must say what it is", a.SrcRange, name)
				}
			}
		}
		for name, b := range m.Outputs {
			if _, ok := b.Body.Attributes["description"]; !ok {
				t.Errorf("%s: output %q has no description", b.DefRange(), name)
			}
		}
	}
}

func TestKMSKeysRotate(t *testing.T) {
	keys := 0
	for _, dir := range moduleDirs(t) {
		m := mustLoad(t, dir)
		for k, b := range m.Resources {
			if !strings.HasPrefix(k, "aws_kms_key.") {
				continue
			}
			keys++
			// AWS rotates only symmetric encryption keys: an asymmetric
			// signing key must leave rotation off (the apply fails otherwise).
			if u, ok := b.Body.Attributes["key_usage"]; ok {
				if v, _ := literalString(u.Expr); v == "SIGN_VERIFY" {
					if a, ok := b.Body.Attributes["enable_key_rotation"]; ok {
						if v, diags := a.Expr.Value(nil); diags.HasErrors() || v.True() {
							t.Errorf("%s: %s is a SIGN_VERIFY key: AWS cannot rotate it; enable_key_rotation must be false", a.SrcRange, k)
						}
					}
					continue
				}
			}
			a, ok := b.Body.Attributes["enable_key_rotation"]
			if !ok {
				t.Errorf("%s: %s must set enable_key_rotation = true (it is off by default)", b.DefRange(), k)
				continue
			}
			if v, diags := a.Expr.Value(nil); diags.HasErrors() || !v.Type().Equals(cty.Bool) || !v.True() {
				t.Errorf("%s: %s: enable_key_rotation must be the literal true, got %s", a.SrcRange, k, sourceText(a.Expr.Range()))
			}
		}
	}
	if keys == 0 {
		t.Fatal("no aws_kms_key found")
	}
}

func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed; CI runs terraform fmt -check -recursive itself")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", ".")
	cmd.Env = append(cmd.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("terraform fmt -check -recursive: %v\n%s", err, out)
	}
}
