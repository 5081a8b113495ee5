locals {
  environments = toset(["sandbox", "production"])

  # Rotation policies, by name. The daemon's config and the dead-man alarm
  # are both rendered from these.
  policies = {
    standard-api-key = {
      rotate_every_hours = 24 * 90
      grace_hours        = 24 * 7
      scopes             = ["payments:read", "payments:write", "refunds:write"]
    }
    webhook-secret = {
      rotate_every_hours = 24 * 30
      grace_hours        = 24
      scopes             = []
    }
    management-key = {
      rotate_every_hours = 24 * 30
      grace_hours        = 1
      scopes             = ["api_keys:read", "api_keys:write", "webhooks:read", "webhooks:write"]
    }
  }
  longest_schedule_hours = max([for p in values(local.policies) : p.rotate_every_hours]...)

  env = {
    sandbox = {
      name                 = "lakirotator-sandbox"
      name_prefix          = "lakirotator/sandbox/"
      log_group_name       = "/lakirotator/sandbox/daemon"
      log_group_prefix     = "/lakirotator/sandbox/"
      lakiconnect_base_url = "https://sandbox.api.lakiconnect.example/v1"
      network              = var.sandbox_network
      master_merchant_id   = var.master_merchant_ids.sandbox
      endpoint_id          = var.checkout_webhook_endpoint_ids.sandbox
      consumer_role_arns   = var.consumer_role_arns.sandbox
      desired_count        = 1
    }
    production = {
      name                 = "lakirotator-production"
      name_prefix          = "lakirotator/production/"
      log_group_name       = "/lakirotator/production/daemon"
      log_group_prefix     = "/lakirotator/production/"
      lakiconnect_base_url = "https://api.lakiconnect.example/v1"
      network              = var.production_network
      master_merchant_id   = var.master_merchant_ids.production
      endpoint_id          = var.checkout_webhook_endpoint_ids.production
      consumer_role_arns   = var.consumer_role_arns.production
      desired_count        = 2
    }
  }

  metrics_port = 9464

  # The daemon's config, one per environment, from the same inputs as the
  # infrastructure. Field names follow the proposal in terraform/README.md;
  # the config package is the authority on them.
  daemon_config = {
    for e in local.environments : e => yamlencode({
      environment = e
      lakiconnect = {
        base_url              = local.env[e].lakiconnect_base_url
        management_key_secret = "${local.env[e].name_prefix}management-key"
      }
      store = {
        type   = "secretsmanager"
        region = var.region
      }
      discovery = {
        name_prefix = local.env[e].name_prefix
        tags = {
          "lakirotator:managed"     = "true"
          "lakirotator:environment" = e
        }
      }
      policies = {
        for name, p in local.policies : name => {
          rotate_every = "${p.rotate_every_hours}h"
          grace        = "${p.grace_hours}h"
          scopes       = p.scopes
        }
      }
      notify = {
        slack = { channel = var.slack_channel }
      }
      metrics = { listen = ":${local.metrics_port}" }
      log     = { format = "json", level = "info" }
    })
  }
}

resource "aws_ecs_cluster" "rotators" {
  name = "lakirotator"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

module "key" {
  source   = "../../modules/environment-key"
  for_each = local.environments

  environment           = each.key
  alias_name            = local.env[each.key].name
  log_group_name_prefix = local.env[each.key].log_group_prefix
}

module "rotator" {
  source   = "../../modules/rotator-service"
  for_each = local.environments

  name                        = local.env[each.key].name
  environment                 = each.key
  image                       = var.image
  ecr_repository_arn          = var.ecr_repository_arn
  config_yaml                 = local.daemon_config[each.key]
  secret_name_prefixes        = [local.env[each.key].name_prefix]
  kms_key_arn                 = module.key[each.key].key_arn
  ecs_cluster_arn             = aws_ecs_cluster.rotators.arn
  vpc_id                      = local.env[each.key].network.vpc_id
  subnet_ids                  = local.env[each.key].network.subnet_ids
  metrics_port                = local.metrics_port
  metrics_allowed_cidr_blocks = local.env[each.key].network.metrics_allowed_cidr_blocks
  desired_count               = local.env[each.key].desired_count
  log_group_name              = local.env[each.key].log_group_name
}

module "secrets" {
  source   = "../../modules/managed-secrets"
  for_each = local.environments

  environment             = each.key
  name_prefix             = local.env[each.key].name_prefix
  kms_key_arn             = module.key[each.key].key_arn
  rotator_role_arn        = module.rotator[each.key].task_role_arn
  administrator_role_arns = var.administrator_role_arns

  secrets = {
    management-key = {
      kind               = "management_key"
      master_merchant_id = local.env[each.key].master_merchant_id
      policy             = "management-key"
      owners             = ["payments-security"]
    }
    checkout-api-key = {
      kind               = "api_key"
      master_merchant_id = local.env[each.key].master_merchant_id
      policy             = "standard-api-key"
      owners             = ["checkout-team", "payments-security"]
      consumer_role_arns = local.env[each.key].consumer_role_arns
    }
    checkout-webhook-secret = {
      kind               = "webhook_secret"
      master_merchant_id = local.env[each.key].master_merchant_id
      endpoint_id        = local.env[each.key].endpoint_id
      policy             = "webhook-secret"
      owners             = ["checkout-team"]
      consumer_role_arns = local.env[each.key].consumer_role_arns
    }
  }
}

module "alarms" {
  source   = "../../modules/alarms"
  for_each = local.environments

  name                   = local.env[each.key].name
  environment            = each.key
  log_group_name         = module.rotator[each.key].log_group_name
  kms_key_arn            = module.key[each.key].key_arn
  longest_schedule_hours = local.longest_schedule_hours

  subscriptions = [
    { protocol = "email", endpoint = var.alarm_email },
  ]
}
