output "task_role_arn" {
  description = "ARN of the daemon's task role: pass it to managed-secrets as rotator_role_arn."
  value       = aws_iam_role.task.arn
}

output "task_role_name" {
  description = "Name of the daemon's task role: pass it to audit-anchor as rotator_role_name and to consumer-events as rotator_task_role_name."
  value       = aws_iam_role.task.name
}

output "execution_role_arn" {
  description = "ARN of the ECS execution role (image pull, logs)."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "Name of the daemon's log group: pass it to alarms."
  value       = aws_cloudwatch_log_group.daemon.name
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.daemon.name
}

output "task_security_group_id" {
  description = "Security group of the task (HTTPS out; http_port in from http_allowed_cidr_blocks and the receiver ALB)."
  value       = aws_security_group.task.id
}

output "secretsmanager_endpoint_id" {
  description = "Id of the Secrets Manager interface endpoint, or null when create_secretsmanager_endpoint is false."
  value       = one(aws_vpc_endpoint.secretsmanager[*].id)
}

output "managed_secret_arn_patterns" {
  description = "The ARN patterns the task role's Secrets Manager permissions are scoped to."
  value       = local.managed_secret_arn_patterns
}

output "receiver_dns_name" {
  description = "DNS name of the public receiver's load balancer (point the certificate's host name at it), or null when public_receiver is null."
  value       = one(aws_lb.receiver[*].dns_name)
}

output "receiver_zone_id" {
  description = "Route 53 zone id of the public receiver's load balancer, for an alias record, or null when public_receiver is null."
  value       = one(aws_lb.receiver[*].zone_id)
}

output "lease_table_name" {
  description = "The replicas' lease table (desired_count > 1), for the config's ha.table; null with one task."
  value       = local.lease_enabled ? aws_dynamodb_table.lease[0].name : null
}
