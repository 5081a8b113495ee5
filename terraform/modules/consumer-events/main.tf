# Rotation events for the applications that use the keys: the bus the
# daemon publishes to (config environments.*.eventbridge.bus), the rotator's
# permission to publish there and nowhere else, and an example rule that
# delivers every event to an SQS queue. terraform/events_test.go holds the
# actions equal to eventbridge.Operations() in providers/eventbridge.

resource "aws_cloudwatch_event_bus" "consumers" {
  name = var.bus_name
  tags = var.tags
}

data "aws_iam_policy_document" "publish" {
  statement {
    sid       = "PublishRotationEvents"
    effect    = "Allow"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.consumers.arn]
  }
}

resource "aws_iam_role_policy" "publish" {
  name   = "lakirotator-consumer-events"
  role   = var.rotator_task_role_name
  policy = data.aws_iam_policy_document.publish.json
}

# The example consumer: every rotation event of this environment, in a queue.
# Consumers write their own rules (a Lambda, an ECS redeploy) the same way,
# matching on detail-type or detail.secret_name.
resource "aws_cloudwatch_event_rule" "example_queue" {
  count = var.example_queue ? 1 : 0

  name           = "${var.bus_name}-to-sqs"
  description    = "lakirotator ${var.environment}: rotation events to the example SQS queue"
  event_bus_name = aws_cloudwatch_event_bus.consumers.name
  event_pattern = jsonencode({
    source = ["lakirotator"]
    detail = { environment = [var.environment] }
  })
  tags = var.tags
}

resource "aws_sqs_queue" "example" {
  count = var.example_queue ? 1 : 0

  name                      = "${var.bus_name}-example"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 345600
  tags                      = var.tags
}

data "aws_iam_policy_document" "example_queue" {
  count = var.example_queue ? 1 : 0

  statement {
    sid       = "EventBridgeRuleOnly"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.example[0].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.example_queue[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "example" {
  count = var.example_queue ? 1 : 0

  queue_url = aws_sqs_queue.example[0].id
  policy    = data.aws_iam_policy_document.example_queue[0].json
}

resource "aws_cloudwatch_event_target" "example_queue" {
  count = var.example_queue ? 1 : 0

  rule           = aws_cloudwatch_event_rule.example_queue[0].name
  event_bus_name = aws_cloudwatch_event_bus.consumers.name
  target_id      = "example-queue"
  arn            = aws_sqs_queue.example[0].arn
}
