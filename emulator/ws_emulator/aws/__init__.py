"""The local AWS services: embedded moto (with its fixes), provisioning and DynamoDB TTL."""
