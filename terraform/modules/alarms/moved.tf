# The alarms were one resource block each until they became the instances of
# aws_cloudwatch_metric_alarm.daemon. These blocks move the alarms of an
# existing deployment to their new addresses instead of destroying and
# recreating them (which would drop their state and history).

moved {
  from = aws_cloudwatch_metric_alarm.rotation_failed
  to   = aws_cloudwatch_metric_alarm.daemon["rotation_failed"]
}

moved {
  from = aws_cloudwatch_metric_alarm.auth_failures
  to   = aws_cloudwatch_metric_alarm.daemon["auth_failures"]
}

moved {
  from = aws_cloudwatch_metric_alarm.critical_alert
  to   = aws_cloudwatch_metric_alarm.daemon["critical_alert"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rotation_overdue
  to   = aws_cloudwatch_metric_alarm.daemon["rotation_overdue"]
}

moved {
  from = aws_cloudwatch_metric_alarm.daemon_silent
  to   = aws_cloudwatch_metric_alarm.daemon["daemon_silent"]
}

moved {
  from = aws_cloudwatch_metric_alarm.no_successful_rotation[0]
  to   = aws_cloudwatch_metric_alarm.daemon["no_successful_rotation"]
}

moved {
  from = aws_cloudwatch_metric_alarm.audit_unwritable
  to   = aws_cloudwatch_metric_alarm.daemon["audit_unwritable"]
}

moved {
  from = aws_cloudwatch_metric_alarm.audit_write_failures
  to   = aws_cloudwatch_metric_alarm.daemon["audit_write_failures"]
}

moved {
  from = aws_cloudwatch_metric_alarm.audit_anchor_failures
  to   = aws_cloudwatch_metric_alarm.daemon["audit_anchor_failures"]
}
