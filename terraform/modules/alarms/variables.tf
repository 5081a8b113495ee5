variable "name" {
  type        = string
  description = "Prefix of the alarm names and the SNS topic, for example \"lakirotator-sandbox\"."
}

variable "environment" {
  type        = string
  description = "LakiConnect environment the watched rotator serves: sandbox or production."

  validation {
    condition     = contains(["sandbox", "production"], var.environment)
    error_message = "The environment must be \"sandbox\" or \"production\"."
  }
}

variable "log_group_name" {
  type        = string
  description = "The daemon's log group (output log_group_name of rotator-service). The alarms read its JSON log lines through metric filters."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the environment's KMS key (module environment-key), which encrypts the alarm topic."
}

variable "longest_schedule_hours" {
  type        = number
  description = "The longest rotation interval of any managed secret, in hours. With no successful rotation for this long the dead-man alarm fires (CloudWatch evaluates at most 7 days; beyond that the overdue alarm covers it)."

  validation {
    condition     = var.longest_schedule_hours >= 1
    error_message = "The longest_schedule_hours must be at least 1."
  }
}

variable "heartbeat_timeout_minutes" {
  type        = number
  description = "Minutes without a \"schedule checked\" log line (the daemon writes one every retire pass, every 5 minutes by default) before the daemon is presumed dead."
  default     = 60

  validation {
    condition     = var.heartbeat_timeout_minutes >= 5 && var.heartbeat_timeout_minutes <= 1440 && var.heartbeat_timeout_minutes % 5 == 0
    error_message = "The heartbeat_timeout_minutes must be a multiple of 5 between 5 and 1440."
  }
}

variable "auth_failure_threshold" {
  type        = number
  description = "401/403 alerts the daemon logs (its own 401/403 watch, or LakiConnect reporting a spike) within 5 minutes that raise the auth-failure alarm."
  default     = 1

  validation {
    condition     = var.auth_failure_threshold >= 1
    error_message = "The auth_failure_threshold must be at least 1."
  }
}

variable "subscriptions" {
  type = list(object({
    protocol = string
    endpoint = string
  }))
  description = "Where the topic delivers: protocol (email, https, sqs, lambda) and endpoint. HTTP without TLS is refused."
  default     = []

  validation {
    condition     = alltrue([for s in var.subscriptions : contains(["email", "https", "sqs", "lambda"], s.protocol)])
    error_message = "Every subscription protocol must be email, https, sqs or lambda."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to the topic and the alarms."
  default     = {}
}
