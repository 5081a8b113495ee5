package terraform_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// discoveryTagKeys are the Secrets Manager tags the daemon's discovery reads
// (documented in README.md). The lead will move them to Go constants; the
// inventory package's Tag* constants hold the same names.
func discoveryTagKeys() []string {
	return []string{
		"lakirotator:endpoint-id",
		"lakirotator:environment",
		"lakirotator:kind",
		"lakirotator:managed",
		"lakirotator:master-merchant",
		"lakirotator:owners",
		"lakirotator:policy",
	}
}

// lakirotatorObjectKeys returns every literal object key starting with
// "lakirotator:" in m.
func lakirotatorObjectKeys(m *module) map[string]bool {
	keys := map[string]bool{}
	for _, f := range m.Files {
		hclsyntax.VisitAll(f, func(n hclsyntax.Node) hcl.Diagnostics {
			if o, ok := n.(*hclsyntax.ObjectConsExpr); ok {
				for _, it := range o.Items {
					if k, ok := literalString(it.KeyExpr); ok && strings.HasPrefix(k, "lakirotator:") {
						keys[k] = true
					}
				}
			}
			return nil
		})
	}
	return keys
}

func TestDiscoveryTagsMatchTheDocumentedList(t *testing.T) {
	want := discoveryTagKeys()
	documented := map[string]bool{}
	for _, k := range want {
		documented[k] = true
	}
	m := mustLoad(t, "modules/managed-secrets")
	got := lakirotatorObjectKeys(m)
	var gotList []string
	for k := range got {
		gotList = append(gotList, k)
	}
	sort.Strings(gotList)
	if strings.Join(gotList, ",") != strings.Join(want, ",") {
		t.Errorf("modules/managed-secrets writes the tags %v; the documented discovery tags are %v", gotList, want)
	}
	for _, dir := range moduleDirs(t) {
		for k := range lakirotatorObjectKeys(mustLoad(t, dir)) {
			if !documented[k] {
				t.Errorf("%s uses the tag key %q, which is not a documented discovery tag", dir, k)
			}
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range want {
		if !strings.Contains(string(readme), "`"+k+"`") {
			t.Errorf("README.md does not document the tag `%s`", k)
		}
	}
}

// literalAttr returns the source text of b's attribute name.
func literalAttr(t *testing.T, b *hclsyntax.Block, name string) string {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Errorf("%s: %s is not set", b.DefRange(), name)
		return ""
	}
	return strings.TrimSpace(sourceText(a.Expr.Range()))
}

// The rotator service's hardening, as the issue asks for it.
func TestRotatorServiceHardening(t *testing.T) {
	m := mustLoad(t, rotatorModule)
	td := m.Resources["aws_ecs_task_definition.daemon"]
	if td == nil {
		t.Fatal("no aws_ecs_task_definition.daemon")
	}
	cd := td.Body.Attributes["container_definitions"]
	for key, want := range map[string]string{"user": `"65532:65532"`, "readonlyRootFilesystem": "true", "privileged": "false"} {
		e, ok := objectItem(cd.Expr, key)
		if !ok {
			t.Errorf("%s: container definition does not set %s", cd.SrcRange, key)
			continue
		}
		if got := strings.TrimSpace(sourceText(e.Range())); got != want {
			t.Errorf("%s: container %s = %s, want %s", e.Range(), key, got, want)
		}
	}
	if e, ok := objectItem(cd.Expr, "logDriver"); !ok || sourceText(e.Range()) != `"awslogs"` {
		t.Errorf("%s: container logs must go through the awslogs driver", cd.SrcRange)
	}
	if got := literalAttr(t, td, "requires_compatibilities"); !strings.Contains(got, "FARGATE") {
		t.Errorf("task definition requires_compatibilities = %s, want FARGATE", got)
	}
	if td.Body.Attributes["task_role_arn"] == nil || td.Body.Attributes["execution_role_arn"] == nil ||
		sourceText(td.Body.Attributes["task_role_arn"].Expr.Range()) == sourceText(td.Body.Attributes["execution_role_arn"].Expr.Range()) {
		t.Errorf("%s: the task role and the execution role must both be set and differ", td.DefRange())
	}

	svc := m.Resources["aws_ecs_service.daemon"]
	if svc == nil {
		t.Fatal("no aws_ecs_service.daemon")
	}
	if got := literalAttr(t, svc, "launch_type"); got != `"FARGATE"` {
		t.Errorf("service launch_type = %s, want FARGATE", got)
	}
	for _, nc := range nestedBodies(svc.Body, "network_configuration") {
		if a := nc.Attributes["assign_public_ip"]; a == nil || sourceText(a.Expr.Range()) != "false" {
			t.Errorf("%s: the task must not get a public IP", nc.SrcRange)
		}
	}
	if v := m.Variables["desired_count"]; v == nil || sourceText(v.Body.Attributes["default"].Expr.Range()) != "1" {
		t.Errorf("desired_count must default to 1")
	}

	// Egress: HTTPS only.
	egress := 0
	for k, b := range m.Resources {
		if strings.HasPrefix(k, "aws_security_group.") {
			for _, nb := range b.Body.Blocks {
				if nb.Type == "egress" || nb.Type == "ingress" {
					t.Errorf("%s: %s: write rules as aws_vpc_security_group_*_rule resources, not inline", nb.DefRange(), k)
				}
			}
		}
		if strings.HasPrefix(k, "aws_vpc_security_group_egress_rule.") {
			if literalAttr(t, b, "security_group_id") != "aws_security_group.task.id" {
				// Another group's egress (the receiver ALB): only to the task.
				if got := literalAttr(t, b, "referenced_security_group_id"); got != "aws_security_group.task.id" {
					t.Errorf("%s: %s may only reach the task's security group, got %s", b.DefRange(), k, got)
				}
				continue
			}
			egress++
			for _, p := range []string{"from_port", "to_port"} {
				if got := literalAttr(t, b, p); got != "443" {
					t.Errorf("%s: %s %s = %s: egress is HTTPS (443) only", b.DefRange(), k, p, got)
				}
			}
			if got := literalAttr(t, b, "ip_protocol"); got != `"tcp"` {
				t.Errorf("%s: %s ip_protocol = %s, want tcp", b.DefRange(), k, got)
			}
		}
	}
	if egress == 0 {
		t.Error("no egress rule: the task could not reach LakiConnect")
	}

	lg := m.Resources["aws_cloudwatch_log_group.daemon"]
	if lg == nil || lg.Body.Attributes["kms_key_id"] == nil || lg.Body.Attributes["retention_in_days"] == nil {
		t.Error("the daemon's log group must set kms_key_id and retention_in_days")
	}
	ep := m.Resources["aws_vpc_endpoint.secretsmanager"]
	if ep == nil {
		t.Fatal("no aws_vpc_endpoint.secretsmanager")
	}
	if got := literalAttr(t, ep, "vpc_endpoint_type"); got != `"Interface"` {
		t.Errorf("Secrets Manager endpoint type = %s, want Interface", got)
	}
	if got := literalAttr(t, ep, "private_dns_enabled"); got != "true" {
		t.Errorf("Secrets Manager endpoint private_dns_enabled = %s, want true (so the SDK's default endpoint stays private)", got)
	}
	if s := sourceText(ep.Body.Attributes["service_name"].Expr.Range()); !strings.HasSuffix(s, `.secretsmanager"`) {
		t.Errorf("endpoint service_name = %s, want com.amazonaws.REGION.secretsmanager", s)
	}
}

func TestSecretsUseTheEnvironmentKeyAndAResourcePolicy(t *testing.T) {
	m := mustLoad(t, "modules/managed-secrets")
	sec := m.Resources["aws_secretsmanager_secret.this"]
	if sec == nil || sec.Body.Attributes["kms_key_id"] == nil {
		t.Fatal("aws_secretsmanager_secret.this must set kms_key_id (the environment's key)")
	}
	pol := m.Resources["aws_secretsmanager_secret_policy.this"]
	if pol == nil {
		t.Fatal("no aws_secretsmanager_secret_policy.this")
	}
	if got := literalAttr(t, pol, "block_public_policy"); got != "true" {
		t.Errorf("block_public_policy = %s, want true", got)
	}
	sids := map[string]statement{}
	for _, st := range policyStatements(m) {
		sids[st.Sid] = st
	}
	for sid, action := range map[string]string{
		"OnlyRotatorWritesVersions": "secretsmanager:PutSecretValue",
		"OnlyRotatorMovesStages":    "secretsmanager:UpdateSecretVersionStage",
		"OnlyNamedRolesRead":        "secretsmanager:GetSecretValue",
	} {
		st, ok := sids[sid]
		if !ok {
			t.Errorf("secret resource policy has no statement %q", sid)
			continue
		}
		has := false
		for _, a := range st.Actions {
			has = has || a == action
		}
		if st.Effect != "Deny" || !has || len(st.Conditions) != 1 || st.Conditions[0] != "aws:PrincipalArn" {
			t.Errorf("%s: want a Deny of %s to every principal but the named roles (aws:PrincipalArn); got effect %s actions %v conditions %v",
				st, action, st.Effect, st.Actions, st.Conditions)
		}
	}
}

// The optional public receiver: off by default, HTTPS only with a TLS 1.2+
// policy, 404 for everything but POSTs on the receiver paths.
func TestPublicReceiverIsNarrow(t *testing.T) {
	m := mustLoad(t, rotatorModule)
	v := m.Variables["public_receiver"]
	if v == nil || sourceText(v.Body.Attributes["default"].Expr.Range()) != "null" {
		t.Fatal("public_receiver must exist and default to null (no internet-facing load balancer)")
	}
	listeners := 0
	for k, b := range m.Resources {
		switch {
		case strings.HasPrefix(k, "aws_lb_listener."):
			listeners++
			if got := literalAttr(t, b, "protocol"); got != `"HTTPS"` {
				t.Errorf("%s: %s protocol = %s: HTTPS only", b.DefRange(), k, got)
			}
			if got := literalAttr(t, b, "port"); got != "443" {
				t.Errorf("%s: %s port = %s, want 443", b.DefRange(), k, got)
			}
			if got := literalAttr(t, b, "ssl_policy"); got != "var.public_receiver.ssl_policy" {
				t.Errorf("%s: %s ssl_policy = %s, want the validated var.public_receiver.ssl_policy", b.DefRange(), k, got)
			}
			da := nestedBodies(b.Body, "default_action")
			if len(da) != 1 || sourceText(da[0].Attributes["type"].Expr.Range()) != `"fixed-response"` {
				t.Errorf("%s: %s default action must be a fixed response", b.DefRange(), k)
				continue
			}
			for _, fr := range nestedBodies(da[0], "fixed_response") {
				if got := sourceText(fr.Attributes["status_code"].Expr.Range()); got != `"404"` {
					t.Errorf("%s: default status %s, want 404", fr.SrcRange, got)
				}
			}
		case strings.HasPrefix(k, "aws_lb_listener_rule."):
			var conds []string
			for _, c := range nestedBodies(b.Body, "condition") {
				for _, nb := range c.Blocks {
					conds = append(conds, nb.Type+"="+strings.TrimSpace(sourceText(nb.Body.Attributes["values"].Expr.Range())))
				}
			}
			sort.Strings(conds)
			if strings.Join(conds, ",") != `http_request_method=["POST"],path_pattern=[each.key]` {
				t.Errorf("%s: %s conditions %v; want exactly the receiver path and POST", b.DefRange(), k, conds)
			}
		case k == "aws_lb.receiver":
			if got := literalAttr(t, b, "drop_invalid_header_fields"); got != "true" {
				t.Errorf("%s: drop_invalid_header_fields = %s, want true", b.DefRange(), got)
			}
		}
	}
	if listeners != 1 {
		t.Errorf("want exactly one (HTTPS) listener, found %d", listeners)
	}
	// The validation's list of policies: every one refuses TLS below 1.2.
	for _, val := range v.Body.Blocks {
		c := sourceText(val.Body.Attributes["condition"].Expr.Range())
		if !strings.Contains(c, "ssl_policy") {
			continue
		}
		for _, p := range regexp.MustCompile(`"(ELBSecurityPolicy[^"]*)"`).FindAllStringSubmatch(c, -1) {
			if !regexp.MustCompile(`TLS13-1-[23]|TLS-1-2|FS-1-2`).MatchString(p[1]) {
				t.Errorf("ssl_policy validation allows %s, which accepts TLS below 1.2", p[1])
			}
		}
	}
}
