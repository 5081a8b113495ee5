variable "environment" {
  type        = string
  description = "LakiConnect environment this key protects: sandbox or production. Keys never span environments."

  validation {
    condition     = contains(["sandbox", "production"], var.environment)
    error_message = "The environment must be \"sandbox\" or \"production\"."
  }
}

variable "alias_name" {
  type        = string
  description = "Alias of the key without the \"alias/\" prefix, for example \"lakirotator-sandbox\"."

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]+$", var.alias_name)) && !startswith(var.alias_name, "aws/")
    error_message = "The alias_name may hold only letters, digits, /, _ and -, and must not start with \"aws/\"."
  }
}

variable "log_group_name_prefix" {
  type        = string
  description = "Name prefix of the CloudWatch log groups that may encrypt with this key (the rotator's log group), for example \"/lakirotator/sandbox\"."
}

variable "deletion_window_in_days" {
  type        = number
  description = "Days a scheduled key deletion waits before the key is destroyed (7 to 30)."
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "The deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to the key."
  default     = {}
}
