"""`make bench`: the mapping-core figures, the worker end-to-end figures, then the edge's."""

from __future__ import annotations

from bench import edge, mapping_core, worker_e2e

mapping_core.main([])
worker_e2e.main([])
edge.main([])
