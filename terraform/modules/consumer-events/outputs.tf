output "bus_name" {
  description = "Name of the event bus: the daemon's environments.*.eventbridge.bus."
  value       = aws_cloudwatch_event_bus.consumers.name
}

output "bus_arn" {
  description = "ARN of the event bus, for consumers' rules in other stacks."
  value       = aws_cloudwatch_event_bus.consumers.arn
}

output "example_queue_url" {
  description = "URL of the example queue, or null without one."
  value       = var.example_queue ? aws_sqs_queue.example[0].id : null
}
