"""Prometheus metrics shared by the domain and the API."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter("registry_http_requests_total", "HTTP requests", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "registry_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CERTIFICATES_ISSUED = Counter("registry_certificates_issued_total", "Certificates issued", ["cert_type"])
VERIFICATIONS = Counter("registry_verifications_total", "Public verifications by result", ["result", "channel"])
SERVER_REFUSALS = Counter(
    "registry_http_server_refusals_total",
    "Requests answered by the server before the app (400, 408, 414, 431)",
    ["status"],
)
VISITS_DROPPED = Counter("registry_visits_dropped_total", "Verification visits not recorded: the queue was full")
