package terraform_test

import (
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/providers/eventbridge"
)

const consumerEventsModule = "modules/consumer-events"

// The rotator may publish rotation events with exactly the operations the
// publisher calls, on the consumer bus only, and no other module grants it
// any EventBridge action.
func TestRotatorPublishesToTheConsumerBusOnly(t *testing.T) {
	var want []string
	for _, op := range eventbridge.Operations() {
		want = append(want, "events:"+op)
	}
	var granted []string
	for _, st := range policyStatements(mustLoad(t, consumerEventsModule)) {
		if !strings.HasSuffix(st.Doc, "data.aws_iam_policy_document.publish") {
			continue
		}
		granted = append(granted, st.Actions...)
	}
	m := mustLoad(t, consumerEventsModule)
	doc, ok := m.Data["aws_iam_policy_document.publish"]
	if !ok {
		t.Fatalf("%s: no data \"aws_iam_policy_document\" \"publish\"", consumerEventsModule)
	}
	for _, b := range doc.Body.Blocks {
		if b.Type != "statement" {
			t.Errorf("%s: only plain statements are expected in the publish policy", b.DefRange())
			continue
		}
		if got := traversals(b.Body.Attributes["resources"]); !slices.Equal(got, []string{"aws_cloudwatch_event_bus.consumers.arn"}) {
			t.Errorf("%s: resources %v, want only the consumer bus (aws_cloudwatch_event_bus.consumers.arn)", b.DefRange(), got)
		}
	}
	if r, ok := m.Resources["aws_iam_role_policy.publish"]; !ok || !slices.Equal(traversals(r.Body.Attributes["role"]), []string{"var.rotator_task_role_name"}) {
		t.Errorf("%s: aws_iam_role_policy.publish must be attached to var.rotator_task_role_name", consumerEventsModule)
	}
	slices.Sort(granted)
	slices.Sort(want)
	if !slices.Equal(granted, want) {
		t.Errorf("%s grants %v; the publisher calls %v", consumerEventsModule, granted, want)
	}
	for _, dir := range moduleDirs(t) {
		if strings.HasSuffix(dir, "consumer-events") {
			continue
		}
		for _, st := range policyStatements(mustLoad(t, dir)) {
			for _, a := range st.Actions {
				if strings.HasPrefix(a, "events:") {
					t.Errorf("%s grants %s: EventBridge permissions belong in %s only", st, a, consumerEventsModule)
				}
			}
		}
	}
}

// traversals names each element of a list attribute (or the attribute
// itself) that is a plain reference, such as "var.x" or "aws_y.z.arn";
// anything else is "?".
func traversals(a *hclsyntax.Attribute) []string {
	if a == nil {
		return nil
	}
	exprs := []hclsyntax.Expression{a.Expr}
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
		exprs = tup.Exprs
	}
	var out []string
	for _, e := range exprs {
		tr, ok := e.(*hclsyntax.ScopeTraversalExpr)
		if !ok {
			out = append(out, "?")
			continue
		}
		parts := []string{tr.Traversal.RootName()}
		for _, step := range tr.Traversal[1:] {
			if at, ok := step.(hcl.TraverseAttr); ok {
				parts = append(parts, at.Name)
			} else {
				parts = append(parts, "?")
			}
		}
		out = append(out, strings.Join(parts, "."))
	}
	return out
}
