resource "aws_security_group" "task" {
  name        = "${var.name}-task"
  description = "lakirotator ${var.environment}: HTTPS out only; metrics in from the VPC scrapers only"
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

resource "aws_vpc_security_group_ingress_rule" "task_metrics" {
  for_each = toset(var.metrics_allowed_cidr_blocks)

  security_group_id = aws_security_group.task.id
  description       = "Prometheus scrape from inside the VPC"
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
