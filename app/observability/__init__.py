"""What an on-call engineer reads: request ids, structured logs with an access line per request,
Prometheus metrics and OpenTelemetry traces."""
