"""The garbage collector for a long-running process on a hot path: the worker and the edge.

Each call the worker translates, and each request the edge answers, allocates dozens of
containers (decoded bodies, lists, dicts, aiohttp's request objects) that die with it, so at
CPython's default young-generation threshold (700) a collection ran every few calls and the old
generations, which hold Faust, aiokafka, aiohttp and the imported modules, were walked again and
again: about a sixth of the worker's CPU time (bench/worker_e2e.py, docs/benchmarks.md).
"""

from __future__ import annotations

import gc
from typing import Final

GC_YOUNG_THRESHOLD: Final = 20_000
"""The collector's young-generation threshold while the process serves (CPython's default: 700)."""


def tune_gc() -> None:
    """Move everything allocated so far out of the collector's sight (`gc.freeze`: modules,
    settings, the app) and collect the young generation less often (GC_YOUNG_THRESHOLD).

    Reference cycles are still collected, only in larger steps; what the hot path allocates is
    mostly acyclic (msgspec structs are not even tracked) and freed by reference counting.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
