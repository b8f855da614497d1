"""What operators see: structured logs and Prometheus metrics. Imports only libraries."""
