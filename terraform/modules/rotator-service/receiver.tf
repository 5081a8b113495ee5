# The optional public entry for LakiConnect's security events. LakiConnect
# delivers from the internet and publishes no source ranges, so the ALB is
# internet-facing; what keeps it narrow: HTTPS only (no port 80 listener),
# a TLS 1.2+ policy, and a listener that forwards POSTs on exactly the
# receiver paths and answers 404 to everything else, so the daemon's API,
# /metrics and health stay private. Every delivery is then checked against
# its signature by the daemon. TLS ends at the ALB; the hop to the task
# stays inside the VPC (the config sets http.allow_plaintext for it).

locals {
  receiver_enabled = var.public_receiver != null
  receiver_paths   = local.receiver_enabled ? var.public_receiver.paths : []
}

resource "aws_security_group" "receiver" {
  count = local.receiver_enabled ? 1 : 0

  name        = "${var.name}-receiver"
  description = "lakirotator ${var.environment}: public receiver ALB, HTTPS in, only to the daemon out"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "receiver_https" {
  for_each = toset(local.receiver_enabled ? var.public_receiver.ingress_cidr_blocks : [])

  security_group_id = aws_security_group.receiver[0].id
  description       = "HTTPS from LakiConnect's deliveries"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "receiver_to_task" {
  count = local.receiver_enabled ? 1 : 0

  security_group_id            = aws_security_group.receiver[0].id
  description                  = "Forward to the daemon's HTTP listener"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.task.id
}

resource "aws_vpc_security_group_ingress_rule" "task_from_receiver" {
  count = local.receiver_enabled ? 1 : 0

  security_group_id            = aws_security_group.task.id
  description                  = "Security events forwarded by the receiver ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.receiver[0].id
}

# Names are left to AWS: ALB and target group names are limited to 32
# characters, shorter than var.name allows.
resource "aws_lb" "receiver" {
  count = local.receiver_enabled ? 1 : 0

  internal                   = false
  load_balancer_type         = "application"
  subnets                    = var.public_receiver.subnet_ids
  security_groups            = [aws_security_group.receiver[0].id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.public_receiver.deletion_protection
  tags                       = merge(var.tags, { Name = "${var.name}-receiver" })
}

resource "aws_lb_target_group" "receiver" {
  count = local.receiver_enabled ? 1 : 0

  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.http_port
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  tags                 = merge(var.tags, { Name = "${var.name}-receiver" })

  health_check {
    protocol = "HTTP"
    path     = "/healthz"
    matcher  = "200"
  }
}

resource "aws_lb_listener" "receiver_https" {
  count = local.receiver_enabled ? 1 : 0

  load_balancer_arn = aws_lb.receiver[0].arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.public_receiver.ssl_policy
  certificate_arn   = var.public_receiver.certificate_arn
  tags              = var.tags

  # Anything not matched by a receiver rule below.
  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      status_code  = "404"
      message_body = "not found"
    }
  }
}

# One rule per receiver path: exact path (no wildcard, see the variable's
# validation), POST only.
resource "aws_lb_listener_rule" "receiver" {
  for_each = { for i, p in local.receiver_paths : p => i }

  listener_arn = aws_lb_listener.receiver_https[0].arn
  priority     = 100 + each.value
  tags         = var.tags

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.receiver[0].arn
  }

  condition {
    path_pattern {
      values = [each.key]
    }
  }

  condition {
    http_request_method {
      values = ["POST"]
    }
  }
}
