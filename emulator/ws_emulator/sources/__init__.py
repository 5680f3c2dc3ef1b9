"""Event source mappings and triggers: DynamoDB streams, SQS, schedules, modelled on Lambda's pollers."""
