locals {
  # The tags the daemon's discovery reads (inventory.FromTags). Keep in step
  # with the list in terraform/README.md and security_test.go. A secret the
  # daemon's config declares (every management key; a security webhook's
  # signing secret) is tagged managed = "false": discovery would otherwise
  # find it too and refuse it as a duplicate on every refresh.
  discovery_tags = {
    for name, s in var.secrets : name => merge(
      {
        "lakirotator:managed"         = s.kind != "management_key" && !s.declared_in_config ? "true" : "false"
        "lakirotator:kind"            = s.kind
        "lakirotator:environment"     = var.environment
        "lakirotator:master-merchant" = s.master_merchant_id
        "lakirotator:policy"          = s.policy
        "lakirotator:owners"          = join(" ", s.owners)
      },
      s.kind == "webhook_secret" ? { "lakirotator:endpoint-id" = s.endpoint_id } : {},
    )
  }

  # Moving stages: the rotator only.
  stage_write_actions = [
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
  ]
}

resource "aws_secretsmanager_secret" "this" {
  for_each = var.secrets

  name                    = "${var.name_prefix}${each.key}"
  description             = each.value.description != "" ? each.value.description : "LakiConnect ${replace(each.value.kind, "_", " ")} (${var.environment}, ${each.value.master_merchant_id}), rotated by lakirotator"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days

  # The daemon writes its own bookkeeping tags (lakirotator:failed-attempts,
  # lakirotator:last-failure, lakirotator:next-attempt,
  # lakirotator:failing-version); the provider's ignore_tags (see the
  # example) keeps Terraform from reporting or removing them.
  tags = merge(var.tags, local.discovery_tags[each.key])
}

data "aws_iam_policy_document" "secret" {
  for_each = var.secrets

  # Who may move stages, write versions and read the value: everyone else
  # is denied, whatever any identity policy in the account says. except
  # lists the only principals each Deny spares.
  dynamic "statement" {
    for_each = {
      # Only the rotator moves stages.
      OnlyRotatorMovesStages = {
        actions = local.stage_write_actions
        except  = [var.rotator_role_arn]
      }
      # Only the rotator writes versions (and, while a set is first filled,
      # the seeding roles: see var.seeding_role_arns).
      OnlyRotatorWritesVersions = {
        actions = ["secretsmanager:PutSecretValue"]
        except  = distinct(concat([var.rotator_role_arn], var.seeding_role_arns))
      }
      # Only the rotator and the named consumers read the value.
      OnlyNamedRolesRead = {
        actions = ["secretsmanager:GetSecretValue"]
        except  = distinct(concat([var.rotator_role_arn], each.value.consumer_role_arns))
      }
    }

    content {
      sid       = statement.key
      effect    = "Deny"
      actions   = statement.value.actions
      resources = [aws_secretsmanager_secret.this[each.key].arn]

      principals {
        type        = "AWS"
        identifiers = ["*"]
      }

      condition {
        test     = "StringNotEquals"
        variable = "aws:PrincipalArn"
        values   = statement.value.except
      }
    }
  }

  statement {
    sid    = "RotatorManagesVersions"
    effect = "Allow"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:TagResource",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    resources = [aws_secretsmanager_secret.this[each.key].arn]

    principals {
      type        = "AWS"
      identifiers = [var.rotator_role_arn]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.consumer_role_arns) > 0 ? [each.value.consumer_role_arns] : []

    content {
      sid    = "ConsumersRead"
      effect = "Allow"
      actions = [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
      ]
      resources = [aws_secretsmanager_secret.this[each.key].arn]

      principals {
        type        = "AWS"
        identifiers = statement.value
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.administrator_role_arns) > 0 ? [var.administrator_role_arns] : []

    content {
      sid    = "AdministratorsManageMetadata"
      effect = "Allow"
      actions = [
        "secretsmanager:DeleteResourcePolicy",
        "secretsmanager:DeleteSecret",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetResourcePolicy",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:RestoreSecret",
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
        "secretsmanager:UpdateSecret",
      ]
      resources = [aws_secretsmanager_secret.this[each.key].arn]

      principals {
        type        = "AWS"
        identifiers = statement.value
      }
    }
  }
}

resource "aws_secretsmanager_secret_policy" "this" {
  for_each = var.secrets

  secret_arn          = aws_secretsmanager_secret.this[each.key].arn
  policy              = data.aws_iam_policy_document.secret[each.key].json
  block_public_policy = true
}
