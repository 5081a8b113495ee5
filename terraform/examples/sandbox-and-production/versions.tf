terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  # The rotation engine's bookkeeping tags on the secrets it manages (the
  # Tag* constants of rotator/engine.go); Terraform must neither show them
  # as drift nor remove them. Only these keys: the discovery tags stay
  # Terraform's.
  ignore_tags {
    keys = [
      "lakirotator:failed-attempts",
      "lakirotator:failing-version",
      "lakirotator:last-failure",
      "lakirotator:next-attempt",
    ]
  }

  default_tags {
    tags = {
      "app" = "lakirotator"
    }
  }
}
