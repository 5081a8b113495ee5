variable "name" {
  description = "Name of the rotator (e.g. lakirotator-production): the signing key's alias and the auditor role are named after it."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,40}$", var.name))
    error_message = "name must be 1-40 letters, digits or hyphens."
  }
}

variable "environment" {
  description = "sandbox or production."
  type        = string

  validation {
    condition     = contains(["sandbox", "production"], var.environment)
    error_message = "environment must be sandbox or production."
  }
}

variable "bucket_name" {
  description = "Name of the audit bucket (globally unique). Records and signed digests are written under key_prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be an S3 bucket name: 3-63 of a-z 0-9 . -"
  }
}

variable "key_prefix" {
  description = "Key prefix of this rotator's records and digests (config audit.anchor.prefix), ending in /."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$", var.key_prefix))
    error_message = "key_prefix must be path segments ending in /, e.g. production/."
  }
}

variable "retention_days" {
  description = "Default Object Lock retention (compliance mode) of every record batch and digest: nobody, the account root included, can delete or shorten it before then."
  type        = number
  default     = 400

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 36500
    error_message = "retention_days must be between 1 and 36500."
  }
}

variable "rotator_role_arn" {
  description = "ARN of the rotator's task role (rotator-service output task_role_arn): the only principal that may sign digests and write to the prefix."
  type        = string
}

variable "rotator_role_name" {
  description = "Name of the rotator's task role (rotator-service output task_role_name): this module attaches the audit policy to it."
  type        = string
}

variable "auditor_principal_arns" {
  description = "Principals (e.g. the security account's auditors role) allowed to assume this module's read-only auditor role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
