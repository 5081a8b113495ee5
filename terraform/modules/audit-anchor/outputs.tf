output "bucket_name" {
  description = "The audit bucket: config audit.anchor.bucket, and audit verify --bucket."
  value       = aws_s3_bucket.audit.bucket
}

output "key_prefix" {
  description = "Config audit.anchor.prefix, and audit verify --prefix."
  value       = var.key_prefix
}

output "signing_key_arn" {
  description = "ARN of the digest signing key (ECC_NIST_P256): config audit.anchor.kms_key_id, and audit verify --kms-key."
  value       = aws_kms_key.signing.arn
}

output "signing_key_alias" {
  description = "Alias of the digest signing key; aws kms get-public-key --key-id <alias> gives auditors the public key."
  value       = aws_kms_alias.signing.name
}

output "auditor_role_arn" {
  description = "ARN of the read-only auditor role (bucket read, kms:Verify, kms:GetPublicKey)."
  value       = aws_iam_role.auditor.arn
}
