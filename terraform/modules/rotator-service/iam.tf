data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Secrets whose names start with a managed prefix; Secrets Manager appends
  # "-" and 6 random characters to every ARN, hence the trailing wildcard.
  managed_secret_arn_patterns = [
    for p in var.secret_name_prefixes :
    "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${p}*"
  ]
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The task role: what the daemon itself may do. The Secrets Manager actions
# are exactly secretsmanager.Operations() in providers/secretsmanager;
# terraform/hcl_test.go holds the two equal.
data "aws_iam_policy_document" "task" {
  statement {
    sid    = "ManagedSecrets"
    effect = "Allow"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetSecretValue",
      "secretsmanager:PutSecretValue",
      "secretsmanager:TagResource",
      "secretsmanager:UpdateSecretVersionStage",
    ]
    resources = local.managed_secret_arn_patterns
  }

  # ListSecrets is a list action: IAM cannot scope it to ARNs. It returns
  # names, tags and stages, never values.
  statement {
    sid       = "DiscoverManagedSecrets"
    effect    = "Allow"
    actions   = ["secretsmanager:ListSecrets"]
    resources = ["*"]
  }

  # Secrets Manager decrypts and encrypts values with the environment's key
  # on the daemon's behalf; the daemon cannot use the key directly.
  statement {
    sid    = "EnvironmentKeyThroughSecretsManager"
    effect = "Allow"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "task" {
  name                 = "${var.name}-task"
  description          = "lakirotator ${var.environment}: the daemon's own permissions"
  assume_role_policy   = data.aws_iam_policy_document.assume_ecs_tasks.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "lakirotator"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# The execution role: what ECS needs to start the task (pull the image,
# write logs). Separate from the task role so the daemon never holds these.
data "aws_iam_policy_document" "execution" {
  statement {
    sid    = "WriteLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.daemon.arn}:log-stream:*"]
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]

    content {
      sid    = "PullImage"
      effect = "Allow"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [statement.value]
    }
  }

  # GetAuthorizationToken has no resource-level permissions.
  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]

    content {
      sid       = "EcrAuthorizationToken"
      effect    = "Allow"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name                 = "${var.name}-execution"
  description          = "lakirotator ${var.environment}: ECS pulls the image and ships logs"
  assume_role_policy   = data.aws_iam_policy_document.assume_ecs_tasks.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name   = "ecs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
