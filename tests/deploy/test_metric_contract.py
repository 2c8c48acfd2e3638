"""The metric list the deploy artifacts are checked against is the one the worker defines."""

from __future__ import annotations

from metric_names import METRICS


def test_the_worker_defines_exactly_the_metrics_the_deploy_artifacts_use() -> None:
    from worker.metrics import DEFINITIONS

    defined = {(d.name, d.kind, tuple(sorted(d.labels))) for d in DEFINITIONS}
    contract = {(m.name, m.kind, tuple(sorted(m.labels))) for m in METRICS}
    assert defined == contract, (
        f"only in worker/metrics.py: {sorted(defined - contract)}; "
        f"only in tests/deploy/metric_names.py: {sorted(contract - defined)}"
    )
