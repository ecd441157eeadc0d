"""Webhooks: endpoints a tenant registers, the outbox's events delivered to them signed as the
Standard Webhooks specification says, retried with backoff for about a day, and every attempt
kept; and the same events on the platform's bus (RabbitMQ) when one is configured."""
