"""Observability: structured logs (one configuration, secrets redacted) and Prometheus metrics."""
