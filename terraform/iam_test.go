package terraform_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/lakirotator/lakirotator/audit/anchor"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
)

// statement is one statement of a data "aws_iam_policy_document", with its
// actions and resources as shapes (interpolations rendered "${}").
type statement struct {
	Where      string // file:line
	Doc        string // module dir + document name
	Sid        string
	Effect     string
	Actions    []string
	Resources  []string
	Principals []string
	Conditions []string // condition variables
}

func (s statement) String() string { return fmt.Sprintf("%s (%s, sid %q)", s.Where, s.Doc, s.Sid) }

// policyStatements returns every statement of every policy document in m,
// including the content of dynamic "statement" blocks. A dynamic block
// whose for_each is a literal table gives one statement per entry, with
// ITERATOR.key and ITERATOR.value.FIELD read from the entry.
func policyStatements(m *module) []statement {
	var out []statement
	names := make([]string, 0, len(m.Data))
	for k := range m.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, key := range names {
		doc := m.Data[key]
		if doc.Labels[0] != "aws_iam_policy_document" {
			continue
		}
		for _, b := range doc.Body.Blocks {
			body := b.Body
			switch {
			case b.Type == "statement":
			case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == "statement":
				for _, c := range b.Body.Blocks {
					if c.Type == "content" {
						body = c.Body
					}
				}
				if entries, ok := tableEntries(b); ok {
					for _, e := range entries {
						resolve := func(x hclsyntax.Expression) hclsyntax.Expression { return e.resolve(dynamicIterator(b), x) }
						out = append(out, readStatement(m, e.Where, filepath.ToSlash(m.Dir)+" data."+key, body, resolve))
					}
					continue
				}
			default:
				continue
			}
			same := func(x hclsyntax.Expression) hclsyntax.Expression { return x }
			out = append(out, readStatement(m, b.DefRange().String(), filepath.ToSlash(m.Dir)+" data."+key, body, same))
		}
	}
	return out
}

// readStatement reads one statement body; resolve replaces references to a
// dynamic block's iterator by the expressions they stand for.
func readStatement(m *module, where, doc string, body *hclsyntax.Body, resolve func(hclsyntax.Expression) hclsyntax.Expression) statement {
	st := statement{Where: where, Doc: doc, Effect: "Allow"}
	if a, ok := body.Attributes["sid"]; ok {
		st.Sid, _ = literalString(resolve(a.Expr))
	}
	if a, ok := body.Attributes["effect"]; ok {
		st.Effect, _ = literalString(resolve(a.Expr))
	}
	if a, ok := body.Attributes["actions"]; ok {
		st.Actions = listItems(m, resolve(a.Expr))
	}
	if _, ok := body.Attributes["not_actions"]; ok {
		st.Actions = append(st.Actions, "NotAction:*")
	}
	if a, ok := body.Attributes["resources"]; ok {
		st.Resources = listItems(m, resolve(a.Expr))
	}
	if _, ok := body.Attributes["not_resources"]; ok {
		st.Resources = append(st.Resources, "NotResource:*")
	}
	for _, c := range body.Blocks {
		switch c.Type {
		case "principals":
			if a, ok := c.Body.Attributes["identifiers"]; ok {
				st.Principals = append(st.Principals, listItems(m, resolve(a.Expr))...)
			}
		case "condition":
			if a, ok := c.Body.Attributes["variable"]; ok {
				v, _ := literalString(resolve(a.Expr))
				st.Conditions = append(st.Conditions, v)
			}
		}
	}
	return st
}

// rotatorSecretsManagerActions returns the Secrets Manager operations the
// rotator's task role allows (without the "secretsmanager:" prefix), sorted.
func rotatorSecretsManagerActions(dir string) ([]string, error) {
	m, err := loadModule(dir)
	if err != nil {
		return nil, err
	}
	if _, ok := m.Data["aws_iam_policy_document.task"]; !ok {
		return nil, fmt.Errorf("%s: no data \"aws_iam_policy_document\" \"task\" (the rotator's task role policy)", dir)
	}
	seen := map[string]bool{}
	for _, st := range policyStatements(m) {
		if !strings.HasSuffix(st.Doc, "data.aws_iam_policy_document.task") || st.Effect != "Allow" {
			continue
		}
		for _, a := range st.Actions {
			if op, ok := strings.CutPrefix(a, "secretsmanager:"); ok {
				seen[op] = true
			}
		}
	}
	ops := make([]string, 0, len(seen))
	for op := range seen {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops, nil
}

// compareOperations reports the operations the code calls that the policy
// does not grant, and those the policy grants that the code never calls.
func compareOperations(code, policy []string) error {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	codeSet, policySet := in(code), in(policy)
	var missing, extra []string
	for _, op := range code {
		if !policySet[op] {
			missing = append(missing, op)
		}
	}
	for _, op := range policy {
		if !codeSet[op] {
			extra = append(extra, op)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("the store calls %v but the rotator role does not allow them", missing))
	}
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("the rotator role allows %v but the store never calls them (remove them, or add them to secretsmanager.Operations())", extra))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

const rotatorModule = "modules/rotator-service"

func TestRotatorRoleAllowsExactlyTheStoreOperations(t *testing.T) {
	got, err := rotatorSecretsManagerActions(rotatorModule)
	if err != nil {
		t.Fatal(err)
	}
	if err := compareOperations(secretsmanager.Operations(), got); err != nil {
		t.Errorf("%s: %v", rotatorModule, err)
	}
}

// Each secret's resource policy lets the rotator do exactly what its task
// role allows on a secret (the same list in two modules): the store's
// operations but ListSecrets, which acts on no one secret.
func TestSecretPolicyAllowsTheRotatorTheStoreOperations(t *testing.T) {
	const dir = "modules/managed-secrets"
	var perSecret []string
	for _, op := range secretsmanager.Operations() {
		if op != "ListSecrets" {
			perSecret = append(perSecret, "secretsmanager:"+op)
		}
	}
	found := false
	for _, st := range policyStatements(mustLoad(t, dir)) {
		if st.Sid != "RotatorManagesVersions" {
			continue
		}
		found = true
		if err := compareOperations(perSecret, st.Actions); err != nil {
			t.Errorf("%s: %v", st, err)
		}
	}
	if !found {
		t.Fatalf("%s: no statement RotatorManagesVersions (the rotator's Allow in each secret's policy)", dir)
	}
}

// The comparator must catch a policy that drifts from the code either way.
func TestRotatorRoleComparatorCatchesDrift(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(rotatorModule, "iam.tf"))
	if err != nil {
		t.Fatal(err)
	}
	ops := secretsmanager.Operations()
	// An operation granted by ARN (not ListSecrets, which has its own statement).
	var dropped string
	for _, op := range ops {
		if op != "ListSecrets" && strings.Contains(string(src), `"secretsmanager:`+op+`",`) {
			dropped = op
			break
		}
	}
	if dropped == "" {
		t.Fatalf("%s/iam.tf lists none of %v as a quoted action", rotatorModule, ops)
	}
	cases := []struct {
		name, from, to, want string
	}{
		{"missing", `"secretsmanager:` + dropped + `",`, ``, "does not allow them"},
		{"extra", `"secretsmanager:` + dropped + `",`, `"secretsmanager:` + dropped + `", "secretsmanager:DeleteSecret",`, "never calls them"},
		{"missing list", `actions   = ["secretsmanager:ListSecrets"]`, `actions   = ["sts:GetCallerIdentity"]`, "ListSecrets"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.from) {
				t.Fatalf("iam.tf no longer contains %q: update the test", tc.from)
			}
			dir := t.TempDir()
			copyTF(t, rotatorModule, dir)
			changed := strings.Replace(string(src), tc.from, tc.to, 1)
			if err := os.WriteFile(filepath.Join(dir, "iam.tf"), []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := rotatorSecretsManagerActions(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = compareOperations(ops, got)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("comparator on the %s policy: got %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

func copyTF(t *testing.T, from, to string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(from, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s: %v", from, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wildcardException is a statement that may have the resource "*".
type wildcardException struct {
	Doc     string // suffix of statement.Doc
	Sid     string // "" for every statement of the document
	Actions []string
	Reason  string // why AWS allows nothing narrower
}

// wildcardResourceAllowed lists the only statements that may have the
// resource "*", with the actions they may hold and the reason.
func wildcardResourceAllowed() []wildcardException {
	return []wildcardException{
		{
			Doc: "modules/rotator-service data.aws_iam_policy_document.task", Sid: "DiscoverManagedSecrets",
			Actions: []string{"secretsmanager:ListSecrets"},
			Reason:  "ListSecrets is a list action: IAM supports no resource-level permissions for it",
		},
		{
			Doc: "modules/rotator-service data.aws_iam_policy_document.execution", Sid: "EcrAuthorizationToken",
			Actions: []string{"ecr:GetAuthorizationToken"},
			Reason:  "GetAuthorizationToken supports no resource-level permissions",
		},
		{
			Doc:    "modules/environment-key data.aws_iam_policy_document.key",
			Reason: "in a KMS key policy the resource \"*\" means this key (its ARN does not exist yet when the policy is written)",
		},
		{
			Doc:    "modules/audit-anchor data.aws_iam_policy_document.key",
			Reason: "in a KMS key policy the resource \"*\" means this key (its ARN does not exist yet when the policy is written)",
		},
	}
}

// denyEveryoneAllowed lists the Deny statements that may name every
// principal with no condition, and why.
func denyEveryoneAllowed() map[string]string {
	return map[string]string{
		"modules/audit-anchor data.aws_iam_policy_document.bucket/NobodyDeletesOrUnlocks": "the audit trail is evidence: no principal, the account root included, may delete it or weaken its lock",
	}
}

func wildcardAllowed(st statement) bool {
	for _, a := range wildcardResourceAllowed() {
		if !strings.HasSuffix(st.Doc, a.Doc) || (a.Sid != "" && a.Sid != st.Sid) {
			continue
		}
		if a.Actions == nil {
			return true
		}
		for _, act := range st.Actions {
			found := false
			for _, ok := range a.Actions {
				found = found || act == ok
			}
			if !found {
				return false
			}
		}
		return true
	}
	return false
}

// resourceProblem says what is too broad about one resource shape, or "".
func resourceProblem(r string) string {
	if r == "*" {
		return "" // handled by the allow-list
	}
	if !strings.Contains(r, "*") {
		return ""
	}
	if strings.Index(r, "*") != len(r)-1 {
		return "a wildcard is allowed only at the end, after a name prefix"
	}
	if strings.HasPrefix(r, "arn:") {
		f := strings.SplitN(r, ":", 6)
		if len(f) < 6 {
			return "not a full ARN (arn:partition:service:region:account:resource)"
		}
		rest := strings.TrimSuffix(f[5], "*")
		typ, name, found := strings.Cut(rest, ":")
		if !found {
			typ, name, found = strings.Cut(rest, "/")
		}
		if rest == "" || (found && name == "") || (!found && typ == "") {
			return "the wildcard covers every resource of the type; end it after a name prefix"
		}
	}
	return ""
}

// wildcardProblems lists the statements of m that use "*" where AWS allows
// something narrower, and returns how many statements it checked.
func wildcardProblems(m *module) (problems []string, checked int) {
	for _, st := range policyStatements(m) {
		checked++
		if len(st.Actions) == 0 {
			problems = append(problems, fmt.Sprintf("%s: statement has no actions", st))
		}
		for _, a := range st.Actions {
			// A Deny can only take away: a service-wide wildcard there
			// (s3:* for TLS-only) narrows, never widens.
			if (strings.Contains(a, "*") && st.Effect != "Deny") || strings.Contains(a, "${}") {
				problems = append(problems, fmt.Sprintf("%s: action %q: list every action by name (no wildcard, no interpolation)", st, a))
			}
		}
		for _, r := range st.Resources {
			if r == "*" && !wildcardAllowed(st) {
				problems = append(problems, fmt.Sprintf("%s: resource \"*\" with actions %v: scope it to ARNs, or add the statement to wildcardResourceAllowed with the reason AWS allows nothing narrower", st, st.Actions))
			}
			if p := resourceProblem(r); p != "" {
				problems = append(problems, fmt.Sprintf("%s: resource %q: %s", st, r, p))
			}
		}
		if len(st.Resources) == 0 && !strings.Contains(st.Doc, "assume") {
			problems = append(problems, fmt.Sprintf("%s: statement without resources", st))
		}
		_, everyone := denyEveryoneAllowed()[st.Doc+"/"+st.Sid]
		for _, p := range st.Principals {
			if p == "*" && (st.Effect != "Deny" || (len(st.Conditions) == 0 && !everyone)) {
				problems = append(problems, fmt.Sprintf("%s: principal \"*\" is allowed only in a Deny statement with a condition", st))
			}
		}
	}
	return problems, checked
}

func TestPoliciesHaveNoWildcardWhereAWSAllowsNarrower(t *testing.T) {
	total := 0
	for _, dir := range moduleDirs(t) {
		problems, n := wildcardProblems(mustLoad(t, dir))
		total += n
		for _, p := range problems {
			t.Error(p)
		}
	}
	if total < 10 {
		t.Fatalf("found only %d policy statements: the walker is missing some", total)
	}
}

func TestWildcardCheckCatchesBroadPolicies(t *testing.T) {
	dir := t.TempDir()
	src := `
locals {
  broad = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"]
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "AllOfS3"
    actions   = ["s3:*"]
    resources = ["arn:aws:s3:::bucket/key"]
  }

  statement {
    sid       = "DiscoverManagedSecrets"
    actions   = ["secretsmanager:ListSecrets", "secretsmanager:GetSecretValue"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = [1]
    content {
      actions   = ["secretsmanager:DescribeSecret"]
      resources = local.broad
      principals {
        type        = "AWS"
        identifiers = ["*"]
      }
    }
  }

  dynamic "statement" {
    for_each = {
      TableNarrow = { actions = ["secretsmanager:GetSecretValue"] }
      TableBroad  = { actions = ["secretsmanager:*"] }
    }
    iterator = row
    content {
      sid       = row.key
      actions   = row.value.actions
      resources = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:lakirotator/x*"]
    }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m := mustLoad(t, dir)
	problems, n := wildcardProblems(m)
	if n != 5 {
		t.Fatalf("checked %d statements, want 5 (one in a dynamic block, two in a dynamic block's table)", n)
	}
	joined := strings.Join(problems, "\n")
	for _, want := range []string{
		`action "s3:*"`,
		`resource "*" with actions [secretsmanager:ListSecrets secretsmanager:GetSecretValue]`,
		`resource "arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"`,
		`principal "*" is allowed only in a Deny statement`,
		`sid "TableBroad"): action "secretsmanager:*"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems do not mention %s; got:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "TableNarrow") {
		t.Errorf("the narrow entry of a dynamic block's table was reported:\n%s", joined)
	}
}

func TestResourceProblemRules(t *testing.T) {
	for r, bad := range map[string]bool{
		"arn:${}:secretsmanager:${}:${}:secret:${}*":                     false,
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:lakirot/*": false,
		"${}:log-stream:*": false,
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:*": true,
		"arn:aws:secretsmanager:*:123456789012:secret:x*":        true,
		"arn:aws:ecr:eu-west-1:123456789012:repository/*":        true,
		"arn:aws:s3:::*":           true,
		"arn:aws:logs:*":           true,
		"arn:${}:iam::${}:role/*x": true,
	} {
		if got := resourceProblem(r) != ""; got != bad {
			t.Errorf("resourceProblem(%q) flagged=%v, want %v", r, got, bad)
		}
	}
}

func TestRotatorRoleScopesSecretsAndKMS(t *testing.T) {
	m := mustLoad(t, rotatorModule)
	var sawScoped, sawKMS bool
	for _, st := range policyStatements(m) {
		if !strings.HasSuffix(st.Doc, "data.aws_iam_policy_document.task") {
			continue
		}
		if st.Effect != "Allow" {
			t.Errorf("%s: the task role needs no Deny; got effect %q", st, st.Effect)
		}
		for _, a := range st.Actions {
			switch {
			case strings.HasPrefix(a, "secretsmanager:") && a != "secretsmanager:ListSecrets":
				sawScoped = true
				for _, r := range st.Resources {
					if !strings.HasPrefix(r, "arn:${}:secretsmanager:${}:${}:secret:") {
						t.Errorf("%s: %s on %q: must be scoped to the managed secrets' ARN prefixes", st, a, r)
					}
				}
			case strings.HasPrefix(a, "kms:"):
				sawKMS = true
				via := false
				for _, c := range st.Conditions {
					via = via || c == "kms:ViaService"
				}
				if !via {
					t.Errorf("%s: %s without a kms:ViaService condition: the daemon may use the key only through Secrets Manager", st, a)
				}
			case strings.HasPrefix(a, "secretsmanager:"):
			default:
				t.Errorf("%s: the task role grants %s, which the daemon does not need", st, a)
			}
		}
	}
	if !sawScoped || !sawKMS {
		t.Errorf("task role: scoped Secrets Manager statement found=%v, KMS statement found=%v; want both", sawScoped, sawKMS)
	}
}

const auditAnchorModule = "modules/audit-anchor"

// documentActions returns the actions a policy document of m allows, sorted.
func documentActions(m *module, doc string) []string {
	seen := map[string]bool{}
	for _, st := range policyStatements(m) {
		if strings.HasSuffix(st.Doc, "data.aws_iam_policy_document."+doc) && st.Effect == "Allow" {
			for _, a := range st.Actions {
				seen[a] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func callActions(calls []anchor.Call) []string {
	seen := map[string]bool{}
	for _, c := range calls {
		seen[c.Action] = true
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// The rotator's audit policy allows exactly what the shipper calls, the
// auditors' exactly what audit verify calls, and the key policy lets the
// rotator only Sign and the auditors only Verify.
func TestAuditAnchorRolesAllowExactlyTheAnchorCalls(t *testing.T) {
	m := mustLoad(t, auditAnchorModule)
	for _, tc := range []struct {
		doc   string
		calls []anchor.Call
	}{
		{"rotator", anchor.WriterCalls()},
		{"auditor", anchor.VerifierCalls()},
	} {
		if err := compareOperations(callActions(tc.calls), documentActions(m, tc.doc)); err != nil {
			t.Errorf("%s data.aws_iam_policy_document.%s: %v", auditAnchorModule, tc.doc, err)
		}
	}
	var signers, verifiers []string
	for _, st := range policyStatements(m) {
		if !strings.HasSuffix(st.Doc, "data.aws_iam_policy_document.key") || st.Effect != "Allow" {
			continue
		}
		switch st.Sid {
		case "RotatorSigns":
			signers = st.Actions
		case "AuditorsVerify":
			verifiers = st.Actions
		case "KeyAdministration":
			for _, a := range st.Actions {
				if a == "kms:Sign" || a == "kms:Verify" {
					t.Errorf("%s: key administration must not use the key (%s)", st, a)
				}
			}
		default:
			t.Errorf("%s: unexpected statement in the signing key's policy", st)
		}
	}
	if !slices.Equal(signers, []string{"kms:Sign"}) {
		t.Errorf("the key policy lets the rotator %v, want exactly [kms:Sign]", signers)
	}
	sort.Strings(verifiers)
	if !slices.Equal(verifiers, []string{"kms:GetPublicKey", "kms:Verify"}) {
		t.Errorf("the key policy lets the auditors %v, want exactly [kms:GetPublicKey kms:Verify]", verifiers)
	}
}

// The comparison catches a policy drifting from the code either way.
func TestAuditAnchorComparatorCatchesDrift(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(auditAnchorModule, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, from, to, doc, want string }{
		{"rotator missing", `actions   = ["s3:GetObject", "s3:PutObject"]`, `actions   = ["s3:PutObject"]`, "rotator", "does not allow them"},
		{"auditor extra", `actions   = ["s3:GetObjectVersion"]`, `actions   = ["s3:GetObjectVersion", "s3:DeleteObjectVersion"]`, "auditor", "never calls them"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.from) {
				t.Fatalf("main.tf no longer contains %q: update the test", tc.from)
			}
			dir := t.TempDir()
			copyTF(t, auditAnchorModule, dir)
			writeFile(t, filepath.Join(dir, "main.tf"), strings.Replace(string(src), tc.from, tc.to, 1))
			m := mustLoad(t, dir)
			calls := anchor.WriterCalls()
			if tc.doc == "auditor" {
				calls = anchor.VerifierCalls()
			}
			err := compareOperations(callActions(calls), documentActions(m, tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
