variable "bus_name" {
  type        = string
  description = "Name of the event bus for rotation events, for example \"lakirotator-sandbox-consumers\" (config environments.*.eventbridge.bus)."

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,200}$", var.bus_name))
    error_message = "The bus name must be 1 to 200 letters, digits, dots, hyphens or underscores."
  }
}

variable "environment" {
  type        = string
  description = "LakiConnect environment whose rotations the bus carries: sandbox or production."

  validation {
    condition     = contains(["sandbox", "production"], var.environment)
    error_message = "The environment must be \"sandbox\" or \"production\"."
  }
}

variable "rotator_task_role_name" {
  type        = string
  description = "Name of the rotator's task role (module rotator-service, output task_role_name): it may publish to this bus only."
}

variable "example_queue" {
  type        = bool
  description = "Create the example rule that delivers every rotation event to an SQS queue."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource."
  default     = {}
}
