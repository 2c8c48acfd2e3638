"""`trackbridge edge`: the Track API-compatible HTTP edge (worker/edge)."""

from __future__ import annotations

import argparse

from worker.cli import options
from worker.config.settings import EDGE_SHARED


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `edge`."""
    parser = subparsers.add_parser(
        "edge",
        help="serve the Track API over HTTP: each accepted call is on the input topic before it is answered",
        description="Serve the Track API's paths (v1, /api/v2/entity, /api/v2/batch) on "
        "TRACKBRIDGE_EDGE_PORT: refuse what the Track API would refuse (401, 400, 404, 405), turn "
        "every other request into one envelope on the input topic and answer 200 only once the "
        "broker acknowledged it (503 with Retry-After when it does not in time). Also serves "
        "/healthz, /readyz and /metrics. Stops cleanly on SIGTERM/SIGINT (status 0).",
    )
    parser.set_defaults(func=_edge)
    options.with_settings(parser, options.EDGE, extra=EDGE_SHARED)


def _edge(args: argparse.Namespace) -> int:
    from worker.edge.runner import run_edge

    settings = options.settings(args)
    options.require_brokers(settings)
    sources = options.required_sources(settings)
    options.require_free_port(settings.edge_host, settings.edge_port, "edge_port")
    return run_edge(settings, sources)
