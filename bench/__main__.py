"""`make bench`: the mapping-core figures, then the worker end-to-end figures."""

from __future__ import annotations

from bench import mapping_core, worker_e2e

mapping_core.main([])
worker_e2e.main([])
