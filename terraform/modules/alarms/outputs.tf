output "topic_arn" {
  description = "ARN of the SNS topic every alarm publishes to."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the alarms this module created."
  value = concat(
    [
      aws_cloudwatch_metric_alarm.rotation_failed.alarm_name,
      aws_cloudwatch_metric_alarm.auth_failures.alarm_name,
      aws_cloudwatch_metric_alarm.critical_alert.alarm_name,
      aws_cloudwatch_metric_alarm.rotation_overdue.alarm_name,
      aws_cloudwatch_metric_alarm.daemon_silent.alarm_name,
    ],
    aws_cloudwatch_metric_alarm.no_successful_rotation[*].alarm_name,
  )
}

output "metric_namespace" {
  description = "CloudWatch namespace of the metrics the log filters publish."
  value       = local.namespace
}
