locals {
  # The alert codes that mean requests were refused with 401/403: the
  # Reason* constants of policies/authwatch and LakiConnect's spike event
  # (daemon/security.go). A test holds this list equal to the Go code.
  auth_reason_codes = [
    "auth_failure_spike",
    "forbidden_on_current_key",
    "forbidden_on_retired_key",
    "forbidden_on_unmanaged_key",
    "forbidden_unattributed",
    "unauthorized_on_current_key",
    "unauthorized_on_retired_key",
    "unauthorized_on_unmanaged_key",
    "unauthorized_unattributed",
  ]

  # One namespace per environment: the two rotators' metrics never mix.
  namespace = "lakirotator/${var.environment}"

  # The daemon's JSON log lines each filter matches. The fields are listed in
  # this module's README: the daemon must keep them.
  metric_filters = {
    rotation_failures = {
      metric  = "RotationFailures"
      pattern = "{ ($.step = \"rotation\") && ($.outcome = \"failed\") }"
      value   = "1"
    }
    rotation_successes = {
      metric  = "RotationSuccesses"
      pattern = "{ ($.step = \"rotation\") && ($.outcome = \"succeeded\") }"
      value   = "1"
    }
    # 401/403 trouble is reported as step=alert lines only: the daemon's own
    # 401/403 watch (codes of policies/authwatch) and LakiConnect's
    # security.auth_failure_spike, both in `reason_code` (`reason` holds
    # words for people). Matching both fields keeps the alarm right
    # whichever field a code lands in.
    auth_alerts_by_code = {
      metric  = "AuthFailures"
      pattern = "{ ($.step = \"alert\") && (${join(" || ", [for c in local.auth_reason_codes : "($.reason_code = \"${c}\")"])}) }"
      value   = "1"
    }
    auth_alerts_by_reason = {
      metric  = "AuthFailures"
      pattern = "{ ($.step = \"alert\") && (${join(" || ", [for c in local.auth_reason_codes : "($.reason = \"${c}\")"])}) }"
      value   = "1"
    }
    critical_alerts = {
      metric  = "CriticalAlerts"
      pattern = "{ ($.step = \"alert\") && ($.severity = \"critical\") }"
      value   = "1"
    }
    # The audit trail (issue 13): no sink can write (the daemon fails closed:
    # scheduled and manual rotations pause); a record could not be written
    # to some sink; a signed digest could not be shipped to the audit bucket.
    audit_unwritable = {
      metric  = "AuditUnwritable"
      pattern = "{ ($.step = \"alert\") && ($.reason_code = \"audit_unwritable\") }"
      value   = "1"
    }
    audit_write_failures = {
      metric  = "AuditWriteFailures"
      pattern = "{ $.msg = \"audit record not written yet (queued until a sink recovers)\" }"
      value   = "1"
    }
    audit_anchor_failures = {
      metric  = "AuditAnchorFailures"
      pattern = "{ $.msg = \"audit anchor: digest not written; retrying next interval\" }"
      value   = "1"
    }
    overdue_secrets = {
      metric  = "OverdueSecrets"
      pattern = "{ $.msg = \"schedule checked\" }"
      value   = "$.overdue"
    }
    heartbeats = {
      metric  = "SchedulerHeartbeats"
      pattern = "{ $.msg = \"schedule checked\" }"
      value   = "1"
    }
  }

  # CloudWatch evaluates an alarm over at most 7 days.
  max_window_hours     = 24 * 7
  dead_man_fits_window = var.longest_schedule_hours <= local.max_window_hours

  # What an alarm is unless its entry below says otherwise: one or more
  # matching log lines in 5 minutes; no lines at all is fine.
  alarm_defaults = {
    statistic           = "Sum"
    period              = 300
    evaluation_periods  = 1
    threshold           = 1
    comparison_operator = "GreaterThanOrEqualToThreshold"
    treat_missing_data  = "notBreaching"
  }

  # Every alarm, by the key that names it ("<name>-<key with dashes>") and
  # its instance (aws_cloudwatch_metric_alarm.daemon["<key>"]). metric is a
  # metric of local.metric_filters (config_test.go holds the two together).
  alarms = merge(
    {
      rotation_failed = {
        metric      = "RotationFailures"
        description = "a rotation failed. See the daemon's log lines with step=rotation, outcome=failed."
      }

      auth_failures = {
        metric      = "AuthFailures"
        threshold   = var.auth_failure_threshold
        description = "401/403 spike (a leaked key being tried, a consumer left on a retired key, or RBAC set wrong). See the daemon's log lines with step=alert and reason or reason_code ending in _key or auth_failure_spike."
      }

      # Anything the daemon raises as a critical alert: the current key
      # revoked, a key exposed that no managed secret holds, a security event
      # it could not act on, 401s on a current key.
      critical_alert = {
        metric      = "CriticalAlerts"
        description = "the daemon raised a critical alert. See its log lines with step=alert, severity=critical (reason_code says which)."
      }

      # A secret past its schedule without a successful rotation: the
      # dead-man's switch for schedules longer than CloudWatch's 7-day window.
      rotation_overdue = {
        metric      = "OverdueSecrets"
        statistic   = "Maximum"
        period      = 3600
        description = "a managed secret has gone longer than its schedule without a successful rotation."
      }

      # The daemon itself stopped: no scheduler pass logged. Missing data
      # breaches.
      daemon_silent = {
        metric              = "SchedulerHeartbeats"
        evaluation_periods  = var.heartbeat_timeout_minutes / 5
        comparison_operator = "LessThanThreshold"
        treat_missing_data  = "breaching"
        description         = "no scheduler pass for ${var.heartbeat_timeout_minutes} minutes; the daemon is down or cannot log."
      }

      # The audit trail cannot be written: scheduled and manual rotations
      # are paused until a sink recovers (freeing disk space is enough).
      audit_unwritable = {
        metric      = "AuditUnwritable"
        description = "no audit sink can write. Scheduled and manual rotations are paused; compromise rotations run and their records wait. Free the audit file's disk; /readyz and lakirotator_audit_writable show recovery."
      }

      audit_write_failures = {
        metric      = "AuditWriteFailures"
        description = "audit records could not be written to a sink (lakirotator_audit_write_failures_total); they are queued and written when it recovers."
      }

      audit_anchor_failures = {
        metric      = "AuditAnchorFailures"
        period      = 900
        threshold   = 2
        description = "a signed audit digest could not be shipped to the audit bucket (S3 or KMS refused); records after the last digest are not anchored until it succeeds."
      }
    },
    # No successful rotation at all for longer than the longest schedule.
    # Only when that fits CloudWatch's 7-day window; rotation_overdue covers
    # longer ones.
    local.dead_man_fits_window ? {
      no_successful_rotation = {
        metric              = "RotationSuccesses"
        period              = 3600
        evaluation_periods  = ceil(var.longest_schedule_hours)
        comparison_operator = "LessThanThreshold"
        treat_missing_data  = "breaching"
        description         = "no successful rotation in ${var.longest_schedule_hours} hours, the longest schedule."
      }
    } : {},
  )
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "alarms" {
  for_each = { for i, s in var.subscriptions : "${s.protocol}:${s.endpoint}" => s }

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

resource "aws_cloudwatch_log_metric_filter" "daemon" {
  for_each = local.metric_filters

  name           = "${var.name}-${replace(each.key, "_", "-")}"
  log_group_name = var.log_group_name
  pattern        = each.value.pattern

  metric_transformation {
    name      = each.value.metric
    namespace = local.namespace
    value     = each.value.value
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "daemon" {
  for_each = { for key, a in local.alarms : key => merge(local.alarm_defaults, a) }

  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description   = "lakirotator ${var.environment}: ${each.value.description}"
  namespace           = local.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison_operator
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags

  depends_on = [aws_cloudwatch_log_metric_filter.daemon]
}
