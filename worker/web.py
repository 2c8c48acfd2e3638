"""The worker's web paths: health, readiness and metrics, served by every process it runs.

Probes (deploy/k8s), the waiting pages, the Faust app and the process helpers all take these.
"""

from __future__ import annotations

from typing import Final

HEALTHZ: Final = "/healthz"
"""Liveness: 200 while the process runs."""
READYZ: Final = "/readyz"
"""Readiness: 200 when the worker can take traffic, else 503 with the reason."""
METRICS: Final = "/metrics"
"""Prometheus exposition."""
