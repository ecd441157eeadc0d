"""The tenant's events streamed to browsers (Server-Sent Events): what the webhooks are sent,
as it commits, from the process's one follower of the outbox."""
