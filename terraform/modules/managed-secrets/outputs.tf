output "secret_arns" {
  description = "ARN of every secret, keyed like var.secrets."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "secret_names" {
  description = "Full name of every secret, keyed like var.secrets."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.name }
}

output "management_key_secret_name" {
  description = "Name of the set's management_key secret (the rotator's own LakiConnect key), or null when the set has none."
  value       = one([for k, s in var.secrets : aws_secretsmanager_secret.this[k].name if s.kind == "management_key"])
}

output "name_prefix" {
  description = "The set's name prefix, as given."
  value       = var.name_prefix
}
