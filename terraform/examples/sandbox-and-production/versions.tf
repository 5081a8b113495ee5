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

  # The daemon keeps its bookkeeping tags (attempts, last failure) under this
  # prefix on the secrets it manages; Terraform must neither show them as
  # drift nor remove them.
  ignore_tags {
    key_prefixes = ["lakirotator:state:"]
  }

  default_tags {
    tags = {
      "app" = "lakirotator"
    }
  }
}
