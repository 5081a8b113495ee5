locals {
  container_name = "lakirotator"
}

resource "aws_cloudwatch_log_group" "daemon" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_task_definition" "daemon" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = var.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-local scratch for the audit file. The image declares the same path
  # as a VOLUME owned by its nonroot user, so ECS gives the volume that owner.
  dynamic "volume" {
    for_each = var.audit_dir == null ? [] : [var.audit_dir]

    content {
      name = "audit"
    }
  }

  container_definitions = jsonencode([
    {
      name      = local.container_name
      image     = var.image
      essential = true
      command   = var.command
      # The image's nonroot user; the root filesystem is read-only because
      # the daemon keeps no state on disk (all state is in Secrets Manager).
      # The one exception, the audit file, is on the task's own volume
      # (audit_dir), shipped to the audit bucket by audit.anchor.
      user                   = "65532:65532"
      readonlyRootFilesystem = true
      privileged             = false
      # A rotation step in flight gets time to finish before SIGKILL.
      stopTimeout = 120
      linuxParameters = {
        capabilities = { drop = ["ALL"] }
      }
      environment = [
        { name = "LAKIROTATOR_CONFIG", value = var.config_yaml },
        { name = "AWS_REGION", value = local.region },
      ]
      portMappings = concat(
        [{ containerPort = var.http_port, protocol = "tcp" }],
        var.metrics_port == null ? [] : [{ containerPort = var.metrics_port, protocol = "tcp" }],
      )
      mountPoints = var.audit_dir == null ? [] : [
        { sourceVolume = "audit", containerPath = var.audit_dir, readOnly = false },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.daemon.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "daemon"
          mode                  = "non-blocking"
        }
      }
    },
  ])
}

resource "aws_ecs_service" "daemon" {
  name                   = var.name
  cluster                = var.ecs_cluster_arn
  task_definition        = aws_ecs_task_definition.daemon.arn
  desired_count          = var.desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = false
  propagate_tags         = "SERVICE"
  # During a deploy old and new tasks overlap: the design makes two replicas
  # converge on one key, so this is safe.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  tags                               = var.tags

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = false
  }

  # Only with the public receiver: the ALB forwards the receiver paths here.
  dynamic "load_balancer" {
    for_each = local.receiver_enabled ? [local.container_name] : []

    content {
      target_group_arn = aws_lb_target_group.receiver[0].arn
      container_name   = load_balancer.value
      container_port   = var.http_port
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}
