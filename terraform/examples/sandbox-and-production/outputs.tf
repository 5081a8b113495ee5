output "daemon_config" {
  description = "The daemon's config file of each environment, as rendered into its task (no secrets in it)."
  value       = local.daemon_config
}

output "task_role_arns" {
  description = "The rotator's task role of each environment."
  value       = { for e, m in module.rotator : e => m.task_role_arn }
}

output "secret_arns" {
  description = "The managed secrets of each environment."
  value       = { for e, m in module.secrets : e => m.secret_arns }
}

output "management_key_secrets" {
  description = "Name of each environment's management key secret: seed it once (see terraform/README.md)."
  value       = { for e, m in module.secrets : e => m.management_key_secret_name }
}

output "alarm_topic_arns" {
  description = "The alarm topic of each environment."
  value       = { for e, m in module.alarms : e => m.topic_arn }
}

output "receiver_dns_names" {
  description = "DNS name of each environment's public security-event receiver (null where public_receivers has none): point the certificate's host name at it and register https://NAME/v1/lakiconnect/events/ENV/MASTER_MERCHANT at LakiConnect."
  value       = { for e, m in module.rotator : e => m.receiver_dns_name }
}

output "audit" {
  description = "Each environment's audit bucket, prefix, signing key alias and auditor role: the flags of lakirotator audit verify."
  value = { for e, m in module.audit : e => {
    bucket           = m.bucket_name
    prefix           = m.key_prefix
    signing_key      = m.signing_key_alias
    auditor_role_arn = m.auditor_role_arn
  } }
}
