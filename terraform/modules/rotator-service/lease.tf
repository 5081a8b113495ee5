# The lease replicas share (package ha): with more than one task, only the
# holder runs scheduled slots, sweeps and scans; every task takes triggers
# and security events. One DynamoDB item, conditional writes only.

locals {
  lease_enabled    = var.desired_count > 1
  lease_table_name = "${var.name}-lease"
  # The lease's key in the table: config ha.name, "lakirotator" unless set.
  lease_item_name = "lakirotator"
}

resource "aws_dynamodb_table" "lease" {
  count = local.lease_enabled ? 1 : 0

  name         = local.lease_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "name"

  attribute {
    name = "name"
    type = "S"
  }

  # The daemon never relies on it: it only tidies a lease no replica has
  # renewed for a day (the item's expires_at).
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = try(yamldecode(var.config_yaml).ha.kind, "") == "dynamodb" && try(yamldecode(var.config_yaml).ha.table, "") == local.lease_table_name
      error_message = "With desired_count > 1 the daemon's config needs ha: {kind: dynamodb, table: <name>-lease, region: ...}: without the lease every task would run every scheduled slot."
    }
  }
}

# Exactly ha.Operations (GetItem, PutItem, UpdateItem) on the lease item;
# terraform/iam_test.go holds the two equal.
data "aws_iam_policy_document" "lease" {
  count = local.lease_enabled ? 1 : 0

  statement {
    sid    = "ReplicaLease"
    effect = "Allow"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.lease[0].arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = [local.lease_item_name]
    }
  }
}

resource "aws_iam_role_policy" "lease" {
  count = local.lease_enabled ? 1 : 0

  name   = "lakirotator-lease"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.lease[0].json
}
