resource "aws_security_group" "task" {
  name        = "${var.name}-task"
  description = "lakirotator ${var.environment}: HTTPS out only; its HTTP listener in from the VPC scrapers and the receiver ALB only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

# LakiConnect and the AWS endpoints are all HTTPS. DNS goes to the VPC
# resolver, which security groups do not filter.
resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to LakiConnect and AWS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# The daemon serves its API, health, metrics and the security-event
# receiver on one listener (config http.listen): one port to open.
resource "aws_vpc_security_group_ingress_rule" "task_http" {
  for_each = toset(var.http_allowed_cidr_blocks)

  security_group_id = aws_security_group.task.id
  description       = "Daemon HTTP listener (metrics, health) from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = var.http_port
  to_port           = var.http_port
  cidr_ipv4         = each.value
}

# With config http.metrics.listen, /metrics has its own port, open only to
# the scrapers.
resource "aws_vpc_security_group_ingress_rule" "task_metrics" {
  for_each = var.metrics_port == null ? toset([]) : toset(var.metrics_allowed_cidr_blocks)

  security_group_id = aws_security_group.task.id
  description       = "Daemon metrics listener from the Prometheus scrapers"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.value
}

resource "aws_security_group" "endpoint" {
  count = var.create_secretsmanager_endpoint ? 1 : 0

  name        = "${var.name}-secretsmanager-endpoint"
  description = "lakirotator ${var.environment}: Secrets Manager endpoint, HTTPS in from the rotator"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "endpoint_https" {
  count = var.create_secretsmanager_endpoint ? 1 : 0

  security_group_id            = aws_security_group.endpoint[0].id
  description                  = "HTTPS from the rotator task"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.task.id
}

# Secrets Manager traffic stays inside the VPC: with private DNS the SDK's
# default endpoint resolves to this interface.
resource "aws_vpc_endpoint" "secretsmanager" {
  count = var.create_secretsmanager_endpoint ? 1 : 0

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.endpoint[0].id]
  private_dns_enabled = true
  tags                = merge(var.tags, { Name = "${var.name}-secretsmanager" })
}
