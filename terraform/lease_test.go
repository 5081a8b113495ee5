package terraform_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/ha"
)

// The lease policy allows exactly the DynamoDB calls the lease makes, on
// the lease table's one item, and the item it names is the daemon's default.
func TestLeasePolicyAllowsExactlyTheLeaseCalls(t *testing.T) {
	m := mustLoad(t, rotatorModule)
	var want []string
	for _, op := range ha.Operations {
		want = append(want, "dynamodb:"+op)
	}
	sort.Strings(want)
	if got := documentActions(m, "lease"); !slices.Equal(got, want) {
		t.Errorf("the lease policy allows %v; the lease calls %v", got, want)
	}
	var saw bool
	for _, st := range policyStatements(m) {
		if !strings.HasSuffix(st.Doc, "data.aws_iam_policy_document.lease") {
			continue
		}
		saw = true
		if len(st.Resources) != 1 || st.Resources[0] == "*" {
			t.Errorf("%s: resources %v; want the lease table alone", st, st.Resources)
		}
		if !slices.Contains(st.Conditions, "dynamodb:LeadingKeys") {
			t.Errorf("%s: no dynamodb:LeadingKeys condition: the role could touch any item of the table", st)
		}
	}
	if !saw {
		t.Fatalf("%s: no data.aws_iam_policy_document.lease", rotatorModule)
	}
	item, ok := m.Locals["lease_item_name"]
	if !ok {
		t.Fatalf("%s: no local lease_item_name", rotatorModule)
	}
	if v, _ := literalString(item.Expr); v != ha.DefaultName {
		t.Errorf("the IAM condition names item %q; the daemon's lease is %q", v, ha.DefaultName)
	}
}

// A policy that drifts from the code is caught.
func TestLeasePolicyComparatorCatchesDrift(t *testing.T) {
	m := mustLoad(t, rotatorModule)
	got := documentActions(m, "lease")
	drifted := append(slices.Clone(got), "dynamodb:Scan")
	sort.Strings(drifted)
	var want []string
	for _, op := range ha.Operations {
		want = append(want, "dynamodb:"+op)
	}
	sort.Strings(want)
	if slices.Equal(drifted, want) {
		t.Error("a policy with dynamodb:Scan compares equal to the lease's calls")
	}
}
