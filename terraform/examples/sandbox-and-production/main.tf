locals {
  environments = toset(["sandbox", "production"])

  # The rotation policies are YAML files the daemon loads from policies_dir,
  # baked into the image (Dockerfile, build argument POLICIES_DIR; by default
  # the repository's policies/examples). These are the names this example's
  # secrets use, and the longest max_age among them, which bounds the
  # dead-man alarm. terraform/config_test.go checks both against the files.
  policies_dir = "/etc/lakirotator/policies"
  policy_names = {
    management_key   = "rotator-management-key"
    webhook_secret   = "webhooks"
    checkout_api_key = { sandbox = "checkout-service-sandbox", production = "checkout-service" }
  }
  longest_max_age_hours = 24 * 90

  # The daemon's one HTTP listener (config http.listen): API, health,
  # metrics and the security-event receivers.
  http_port = 8080

  # The audit file's directory: the image's VOLUME, on a task volume.
  audit_dir = "/var/lib/lakirotator"

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
      security_endpoint_id = var.security_webhook_endpoint_ids.sandbox
      consumer_role_arns   = var.consumer_role_arns.sandbox
      public_receiver      = var.public_receivers.sandbox
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
      security_endpoint_id = var.security_webhook_endpoint_ids.production
      consumer_role_arns   = var.consumer_role_arns.production
      public_receiver      = var.public_receivers.production
      desired_count        = 2
    }
  }

  # The path LakiConnect delivers each environment's security events to
  # (config security_webhook.path, set explicitly so the ALB rule and the
  # daemon agree on it).
  receiver_path = { for e in local.environments : e => "/v1/lakiconnect/events/${e}/${local.env[e].master_merchant_id}" }

  # The daemon's config, one per environment, rendered from the same inputs
  # as the infrastructure. It holds no secret value: only secret names.
  daemon_config = {
    for e in local.environments : e => templatefile("${path.module}/config.yaml.tftpl", {
      environment          = e
      region               = var.region
      lakiconnect_base_url = local.env[e].lakiconnect_base_url
      policies_dir         = local.policies_dir
      http_port            = local.http_port
      log_level            = var.log_level
      event_bus            = "${local.env[e].name}-consumers"
      # Module rotator-service makes the lease table when it runs more than one task.
      lease_table = local.env[e].desired_count > 1 ? "${local.env[e].name}-lease" : null
      # The signing key by its alias (module audit-anchor names it so), so
      # the config does not wait for the key.
      audit = {
        file       = "${local.audit_dir}/audit.jsonl"
        bucket     = var.audit_bucket_names[e]
        prefix     = "${e}/"
        kms_key_id = "alias/${local.env[e].name}-audit"
      }
      master_merchants = [
        {
          id                    = local.env[e].master_merchant_id
          management_key_secret = "${local.env[e].name_prefix}management-key"
          management_key_policy = local.policy_names.management_key
          management_key_owners = ["payments-security"]
          security_webhook = {
            endpoint_id = local.env[e].security_endpoint_id
            secret      = "${local.env[e].name_prefix}security-webhook"
            path        = local.receiver_path[e]
            policy      = local.policy_names.webhook_secret
            owners      = ["payments-security"]
          }
        },
      ]
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

  name                     = local.env[each.key].name
  environment              = each.key
  image                    = var.image
  ecr_repository_arn       = var.ecr_repository_arn
  config_yaml              = local.daemon_config[each.key]
  secret_name_prefixes     = [local.env[each.key].name_prefix]
  kms_key_arn              = module.key[each.key].key_arn
  ecs_cluster_arn          = aws_ecs_cluster.rotators.arn
  vpc_id                   = local.env[each.key].network.vpc_id
  subnet_ids               = local.env[each.key].network.subnet_ids
  http_port                = local.http_port
  http_allowed_cidr_blocks = local.env[each.key].network.http_allowed_cidr_blocks
  desired_count            = local.env[each.key].desired_count
  log_group_name           = local.env[each.key].log_group_name
  audit_dir                = local.audit_dir

  # Off unless the team gives a certificate and public subnets.
  public_receiver = local.env[each.key].public_receiver == null ? null : {
    certificate_arn = local.env[each.key].public_receiver.certificate_arn
    subnet_ids      = local.env[each.key].public_receiver.subnet_ids
    paths           = [local.receiver_path[each.key]]
  }
}

# Rotation events for consumers (config environments.*.eventbridge), with
# the example rule to SQS.
module "consumer_events" {
  source   = "../../modules/consumer-events"
  for_each = local.environments

  bus_name               = "${local.env[each.key].name}-consumers"
  environment            = each.key
  rotator_task_role_name = module.rotator[each.key].task_role_name
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
    # Declared in the daemon's config (master_merchants[]), not discovered.
    management-key = {
      kind               = "management_key"
      master_merchant_id = local.env[each.key].master_merchant_id
      policy             = local.policy_names.management_key
      owners             = ["payments-security"]
    }
    security-webhook = {
      kind               = "webhook_secret"
      master_merchant_id = local.env[each.key].master_merchant_id
      endpoint_id        = local.env[each.key].security_endpoint_id
      policy             = local.policy_names.webhook_secret
      owners             = ["payments-security"]
      declared_in_config = true
    }
    checkout-api-key = {
      kind               = "api_key"
      master_merchant_id = local.env[each.key].master_merchant_id
      policy             = local.policy_names.checkout_api_key[each.key]
      owners             = ["checkout-team", "payments-security"]
      consumer_role_arns = local.env[each.key].consumer_role_arns
    }
    checkout-webhook-secret = {
      kind               = "webhook_secret"
      master_merchant_id = local.env[each.key].master_merchant_id
      endpoint_id        = local.env[each.key].endpoint_id
      policy             = local.policy_names.webhook_secret
      owners             = ["checkout-team"]
      consumer_role_arns = local.env[each.key].consumer_role_arns
    }
  }
}

module "audit" {
  source   = "../../modules/audit-anchor"
  for_each = local.environments

  name                   = local.env[each.key].name
  environment            = each.key
  bucket_name            = var.audit_bucket_names[each.key]
  key_prefix             = "${each.key}/"
  rotator_role_arn       = module.rotator[each.key].task_role_arn
  rotator_role_name      = module.rotator[each.key].task_role_name
  auditor_principal_arns = var.auditor_principal_arns
}

module "alarms" {
  source   = "../../modules/alarms"
  for_each = local.environments

  name                   = local.env[each.key].name
  environment            = each.key
  log_group_name         = module.rotator[each.key].log_group_name
  kms_key_arn            = module.key[each.key].key_arn
  longest_schedule_hours = local.longest_max_age_hours

  subscriptions = [
    { protocol = "email", endpoint = var.alarm_email },
  ]
}
