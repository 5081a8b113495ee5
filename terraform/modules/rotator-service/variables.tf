variable "name" {
  type        = string
  description = "Name of the service and prefix of its roles and security groups, for example \"lakirotator-sandbox\". One rotator service per environment."

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 1 to 40 letters, digits or hyphens (it prefixes IAM role names)."
  }
}

variable "environment" {
  type        = string
  description = "LakiConnect environment this rotator serves: sandbox or production."

  validation {
    condition     = contains(["sandbox", "production"], var.environment)
    error_message = "The environment must be \"sandbox\" or \"production\"."
  }
}

variable "image" {
  type        = string
  description = "Container image of the daemon (the repository's Dockerfile), pinned by digest: REPOSITORY@sha256:..."

  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "The image must be pinned by digest (REPOSITORY@sha256:<64 hex>), so a tag that moves cannot change what runs."
  }
}

variable "ecr_repository_arn" {
  type        = string
  description = "ARN of the ECR repository holding the image; the execution role may pull from it only. Null when the image needs no ECR credentials."
  default     = null
}

variable "config_yaml" {
  type        = string
  description = "The daemon's config file, rendered (see examples/). It holds no secret: the management key is read from Secrets Manager by name. Passed to the container in the LAKIROTATOR_CONFIG environment variable."

  validation {
    condition     = length(var.config_yaml) > 0 && length(var.config_yaml) < 32768
    error_message = "The config_yaml must be non-empty and under 32 KiB (ECS limits the size of a container definition)."
  }
}

variable "command" {
  type        = list(string)
  description = "Arguments to the daemon's entrypoint. The default serves with the config taken from LAKIROTATOR_CONFIG (the root filesystem is read-only, so no file is written at start)."
  default     = ["serve", "--config-env", "LAKIROTATOR_CONFIG"]
}

variable "secret_name_prefixes" {
  type        = list(string)
  description = "Name prefixes of the secrets this rotator manages (output name_prefix of managed-secrets), each ending in \"/\". The task role may touch only secrets whose names start with one of them."

  validation {
    condition     = length(var.secret_name_prefixes) > 0 && alltrue([for p in var.secret_name_prefixes : can(regex("^[A-Za-z0-9/_+=.@-]+/$", p))])
    error_message = "Give at least one prefix; each must end in \"/\" and hold only letters, digits and /_+=.@- (no wildcards)."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the environment's KMS key (module environment-key): encrypts the secrets (used only through Secrets Manager) and the log group."

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "ecs_cluster_arn" {
  type        = string
  description = "ARN of the ECS cluster the service runs in."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the task and the Secrets Manager endpoint."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the task and the Secrets Manager endpoint. The task gets no public IP: it reaches LakiConnect through the subnets' NAT."

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "http_port" {
  type        = number
  description = "TCP port of the daemon's one HTTP listener (config http.listen): its API, /healthz, /readyz, /metrics and the LakiConnect security-event receiver all share it. The rendered config must listen on the same port."
  default     = 8080

  validation {
    condition     = var.http_port > 1024 && var.http_port < 65536
    error_message = "The http_port must be between 1025 and 65535 (the daemon does not run as root)."
  }
}

variable "http_allowed_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks inside the VPC (the Prometheus scrapers, operators' tooling) that may reach http_port. The public receiver's load balancer, when enabled, is allowed on its own; nothing else may connect to the task."

  validation {
    condition     = alltrue([for c in var.http_allowed_cidr_blocks : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "Every http_allowed_cidr_blocks entry must be an IPv4 CIDR block narrower than /0."
  }
}

variable "metrics_port" {
  type        = number
  description = "TCP port of the daemon's own metrics listener (config http.metrics.listen), when /metrics is kept off the API's port; null when metrics share http_port. The rendered config must listen on the same port."
  default     = null

  validation {
    condition     = var.metrics_port == null ? true : (var.metrics_port > 1024 && var.metrics_port < 65536)
    error_message = "The metrics_port must be between 1025 and 65535 (the daemon does not run as root)."
  }
}

variable "metrics_allowed_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks inside the VPC (the Prometheus scrapers) that may reach metrics_port; used only when metrics_port is set."
  default     = []

  validation {
    condition     = alltrue([for c in var.metrics_allowed_cidr_blocks : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "Every metrics_allowed_cidr_blocks entry must be an IPv4 CIDR block narrower than /0."
  }
}

variable "public_receiver" {
  type = object({
    certificate_arn     = string
    subnet_ids          = list(string)
    paths               = list(string)
    ingress_cidr_blocks = optional(list(string), ["0.0.0.0/0"])
    ssl_policy          = optional(string, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    deletion_protection = optional(bool, true)
  })
  description = "Optional internet-facing ALB through which LakiConnect delivers security events (null: none, the default). HTTPS only on 443 with certificate_arn (ACM) and a TLS 1.2+ ssl_policy; forwards POST requests on exactly the receiver paths (the config's security_webhook.path of each master merchant) to the task, and answers 404 to everything else. subnet_ids: public subnets of vpc_id; ingress_cidr_blocks: who may connect (LakiConnect publishes no source ranges, so the internet by default; deliveries are authenticated by their signature)."
  default     = null

  # Terraform 1.5 evaluates both sides of ||: try/can keep a null
  # public_receiver from failing the right-hand side.
  validation {
    condition     = var.public_receiver == null || can(regex("^arn:[a-z-]+:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.public_receiver.certificate_arn))
    error_message = "The public_receiver.certificate_arn must be an ACM certificate ARN (arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID)."
  }

  validation {
    condition     = var.public_receiver == null || try(length(var.public_receiver.subnet_ids) >= 2, false)
    error_message = "The public_receiver needs at least two public subnet_ids, in different availability zones (an ALB requirement)."
  }

  validation {
    condition     = var.public_receiver == null || try(length(var.public_receiver.paths) > 0 && alltrue([for p in var.public_receiver.paths : can(regex("^/[A-Za-z0-9/_.-]+$", p))]), false)
    error_message = "The public_receiver.paths must list at least one receiver path, each starting with / and holding no wildcard (* or ?): only the receivers are exposed."
  }

  validation {
    condition     = var.public_receiver == null || contains(["ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS-1-2-2017-01", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06", "ELBSecurityPolicy-FS-1-2-2019-08", "ELBSecurityPolicy-FS-1-2-Res-2019-08", "ELBSecurityPolicy-FS-1-2-Res-2020-10"], try(var.public_receiver.ssl_policy, ""))
    error_message = "The public_receiver.ssl_policy must be an ELB policy that refuses TLS below 1.2 (for example ELBSecurityPolicy-TLS13-1-2-2021-06)."
  }

  validation {
    condition     = var.public_receiver == null || try(alltrue([for c in var.public_receiver.ingress_cidr_blocks : can(cidrhost(c, 0))]), false)
    error_message = "Every public_receiver.ingress_cidr_blocks entry must be an IPv4 CIDR block."
  }
}

variable "desired_count" {
  type        = number
  description = "Number of daemon tasks: 1, or 2 for availability. With 2 the tasks share a lease in DynamoDB (lease.tf): the holder runs scheduled work, both take triggers; the config needs ha: with the table."
  default     = 1

  validation {
    condition     = var.desired_count == 1 || var.desired_count == 2
    error_message = "The desired_count must be 1 or 2."
  }
}

variable "cpu" {
  type        = number
  description = "Fargate CPU units of the task."
  default     = 256
}

variable "memory" {
  type        = number
  description = "Fargate memory of the task, in MiB."
  default     = 512
}

variable "cpu_architecture" {
  type        = string
  description = "CPU architecture of the image: X86_64 or ARM64."
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_group_name" {
  type        = string
  description = "Name of the daemon's CloudWatch log group. It must start with the log_group_name_prefix given to environment-key, or the key refuses to encrypt it."
}

variable "log_retention_in_days" {
  type        = number
  description = "Days the daemon's logs are kept (one of CloudWatch's allowed values). The audit trail of rotations lives in them."
  default     = 400

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "The log_retention_in_days must be one of CloudWatch's values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653). Not 0: logs must expire."
  }
}

variable "create_secretsmanager_endpoint" {
  type        = bool
  description = "Create an interface VPC endpoint for Secrets Manager with private DNS in vpc_id. Set false when the VPC already has one (a VPC can hold only one with private DNS)."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of the module."
  default     = {}
}

variable "audit_dir" {
  description = "Directory for the daemon's audit file (config audit.file), on a task volume: the image's /var/lib/lakirotator. null: no audit file (audit records go to the log)."
  type        = string
  default     = null

  validation {
    condition     = var.audit_dir == null || can(regex("^/[A-Za-z0-9/_.-]+$", var.audit_dir))
    error_message = "audit_dir must be an absolute path."
  }
}
