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
    vpc_id                      = string
    subnet_ids                  = list(string)
    metrics_allowed_cidr_blocks = list(string)
  })
  description = "Where the sandbox rotator runs: its VPC, private subnets, and the CIDR blocks of its Prometheus scrapers."
}

variable "production_network" {
  type = object({
    vpc_id                      = string
    subnet_ids                  = list(string)
    metrics_allowed_cidr_blocks = list(string)
  })
  description = "Where the production rotator runs: its VPC, private subnets, and the CIDR blocks of its Prometheus scrapers. Use a different VPC from sandbox."
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

variable "slack_channel" {
  type        = string
  description = "Slack channel the daemon posts rotation notices to (its token is a managed secret, outside this example)."
  default     = "#payments-security"
}
