variable "environment" {
  type        = string
  description = "LakiConnect environment of every secret in this set: sandbox or production. Written to the lakirotator:environment tag; the daemon refuses a credential whose environment differs."

  validation {
    condition     = contains(["sandbox", "production"], var.environment)
    error_message = "The environment must be \"sandbox\" or \"production\"."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every secret name in this set, ending in \"/\", for example \"lakirotator/sandbox/\". The rotator's IAM policy is scoped to it; use a different prefix per environment."

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]+/$", var.name_prefix))
    error_message = "The name_prefix must end in \"/\" and hold only the characters Secrets Manager allows in names (letters, digits, /_+=.@-)."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the environment's KMS key (module environment-key). Secrets are encrypted with it, never with the AWS managed key."

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "rotator_role_arn" {
  type        = string
  description = "ARN of the rotator's task role (output task_role_arn of rotator-service). The only principal allowed to write versions or move stages."

  validation {
    condition     = can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/", var.rotator_role_arn))
    error_message = "The rotator_role_arn must be an IAM role ARN."
  }
}

variable "administrator_role_arns" {
  type        = list(string)
  description = "IAM roles that manage the secrets' metadata with Terraform (describe, tag, update description, policy, delete). They can neither read values nor write versions."
  default     = []
}

variable "seeding_role_arns" {
  type        = list(string)
  description = "Roles allowed to put a secret's first value (an existing LakiConnect key being adopted, the first management key). Leave empty once every secret has an AWSCURRENT version: afterwards only the rotator writes."
  default     = []
}

variable "secrets" {
  description = <<-EOT
    The credentials in this set, keyed by the name after name_prefix.
    kind: api_key, webhook_secret or management_key (the rotator's own LakiConnect key);
    master_merchant_id: LakiConnect master merchant (mm_ + 16 alphanumerics);
    endpoint_id: the webhook endpoint (webhook_secret only);
    policy: name of the rotation policy the daemon applies;
    owners: people or teams told about this secret;
    consumer_role_arns: the only roles, besides the rotator, that may read the value;
    declared_in_config: true for a secret the daemon's config names (a master merchant's security_webhook.secret), so discovery skips it. Management keys are always declared in the config.
  EOT
  type = map(object({
    kind               = string
    master_merchant_id = string
    endpoint_id        = optional(string, "")
    policy             = string
    owners             = list(string)
    consumer_role_arns = optional(list(string), [])
    description        = optional(string, "")
    declared_in_config = optional(bool, false)
  }))

  validation {
    condition     = alltrue([for s in values(var.secrets) : contains(["api_key", "webhook_secret", "management_key"], s.kind)])
    error_message = "Every secret's kind must be api_key, webhook_secret or management_key."
  }

  validation {
    condition     = alltrue([for s in values(var.secrets) : can(regex("^mm_[A-Za-z0-9]{16}$", s.master_merchant_id))])
    error_message = "Every secret's master_merchant_id must be mm_ followed by 16 letters or digits."
  }

  validation {
    condition     = alltrue([for s in values(var.secrets) : s.kind != "webhook_secret" || can(regex("^we_[A-Za-z0-9]{24}$", s.endpoint_id))])
    error_message = "Every webhook_secret needs an endpoint_id: we_ followed by 24 letters or digits."
  }

  validation {
    condition     = alltrue([for s in values(var.secrets) : length(s.owners) > 0 && alltrue([for o in s.owners : can(regex("^[A-Za-z0-9@._+-]+$", o))])])
    error_message = "Every secret needs at least one owner, and owners may not contain spaces or commas (the tag joins them with spaces)."
  }

  validation {
    condition     = length([for s in values(var.secrets) : s if s.kind == "management_key"]) <= 1
    error_message = "A set holds at most one management_key: the rotator has one management key per environment."
  }
}

variable "recovery_window_in_days" {
  type        = number
  description = "Days a deleted secret can be restored (7 to 30). Never 0: a deleted credential must stay recoverable."
  default     = 30

  validation {
    condition     = var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30
    error_message = "The recovery_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every secret. Keys starting with \"lakirotator:\" are reserved for the daemon's discovery tags and are refused."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(k, "lakirotator:")])
    error_message = "Tag keys starting with \"lakirotator:\" are reserved for the module."
  }
}
