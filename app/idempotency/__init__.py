"""Create requests that can be retried safely: an `Idempotency-Key` header makes a retry with
the same key and body get the first answer (Stripe's and Telnyx's convention)."""
