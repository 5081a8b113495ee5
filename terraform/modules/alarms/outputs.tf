output "topic_arn" {
  description = "ARN of the SNS topic every alarm publishes to."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the alarms this module created."
  value       = [for a in aws_cloudwatch_metric_alarm.daemon : a.alarm_name]
}

output "metric_namespace" {
  description = "CloudWatch namespace of the metrics the log filters publish."
  value       = local.namespace
}
