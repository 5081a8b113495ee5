output "key_arn" {
  description = "ARN of the environment's KMS key: pass it to managed-secrets, rotator-service and alarms."
  value       = aws_kms_key.this.arn
}

output "key_id" {
  description = "Id of the environment's KMS key."
  value       = aws_kms_key.this.key_id
}

output "alias_name" {
  description = "Full alias name of the key, \"alias/...\"."
  value       = aws_kms_alias.this.name
}
