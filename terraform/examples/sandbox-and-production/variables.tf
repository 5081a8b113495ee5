variable "region" {
  type        = string
  description = "AWS region of both environments."
  default     = "eu-west-1"
}

variable "image" {
  type        = string
  description = "The daemon's container image, pinned by digest (REPOSITORY@sha256:...). Both environments run the same build."
}

variable "ecr_repository_arn" {
  type        = string
  description = "ARN of the ECR repository of the image, or null for a public registry."
  default     = null
}

variable "sandbox_network" {
  type = object({
    vpc_id                   = string
    subnet_ids               = list(string)
    http_allowed_cidr_blocks = list(string)
  })
  description = "Where the sandbox rotator runs: its VPC, private subnets, and the CIDR blocks inside it (Prometheus scrapers) that may reach the daemon's HTTP listener."
}

variable "production_network" {
  type = object({
    vpc_id                   = string
    subnet_ids               = list(string)
    http_allowed_cidr_blocks = list(string)
  })
  description = "Where the production rotator runs: its VPC, private subnets, and the CIDR blocks inside it (Prometheus scrapers) that may reach the daemon's HTTP listener. Use a different VPC from sandbox."
}

variable "master_merchant_ids" {
  type = object({
    sandbox    = string
    production = string
  })
  description = "LakiConnect master merchant of each environment (mm_ + 16 alphanumerics)."
}

variable "checkout_webhook_endpoint_ids" {
  type = object({
    sandbox    = string
    production = string
  })
  description = "LakiConnect webhook endpoint (we_ + 24 alphanumerics) whose signing secret each environment rotates."
}

variable "consumer_role_arns" {
  type = object({
    sandbox    = list(string)
    production = list(string)
  })
  description = "Roles of the services that read the credentials (the checkout service), per environment. No role should be in both."
}

variable "administrator_role_arns" {
  type        = list(string)
  description = "Roles that run this Terraform and manage the secrets' metadata."
  default     = []
}

variable "alarm_email" {
  type        = string
  description = "Address that receives the alarms of both environments."
}

variable "security_webhook_endpoint_ids" {
  type = object({
    sandbox    = string
    production = string
  })
  description = "LakiConnect webhook endpoint (we_ + 24 alphanumerics) that delivers each environment's security events (api_key.exposed, security.auth_failure_spike, ...) to the daemon. Its signing secret is the managed secret <prefix>security-webhook."
}

variable "public_receivers" {
  type = object({
    sandbox = optional(object({
      certificate_arn = string
      subnet_ids      = list(string)
    }))
    production = optional(object({
      certificate_arn = string
      subnet_ids      = list(string)
    }))
  })
  description = "Per environment, an internet-facing HTTPS load balancer through which LakiConnect delivers security events: an ACM certificate ARN and two or more public subnets. Null (the default) creates none; then the receiver is reachable only inside the VPC."
  default     = {}
}

variable "log_level" {
  type        = string
  description = "Lowest level the daemons log: debug, info, warn or error. The alarms need info (rotation and schedule lines)."
  default     = "info"

  validation {
    condition     = contains(["debug", "info"], var.log_level)
    error_message = "The log_level must be debug or info: the alarms read info lines (schedule checked, rotation succeeded)."
  }
}

variable "audit_bucket_names" {
  description = "Names of the audit buckets (Object Lock, module audit-anchor), one per environment; globally unique."
  type = object({
    sandbox    = string
    production = string
  })
}

variable "auditor_principal_arns" {
  description = "Principals (e.g. the security account's auditors) that may assume each environment's read-only audit verifier role."
  type        = list(string)
  default     = []
}
