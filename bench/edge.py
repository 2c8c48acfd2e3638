"""The Track API edge against a bare aiohttp handler, on the embedded broker.

One run, one embedded Tansu broker, a 4-partition input:

1. Throughput: keep-alive clients (`--connections` of them, in their own process, each sending
   its next request as soon as the previous one is answered) send the mapping-core request mix
   (bench.mapping_core: identify, track, page, /api/v2/entity, /api/v2/batch of 5) for
   `--seconds`, first to a bare aiohttp handler that reads the body and answers 200 `{}` without
   producing (the HTTP ceiling of this machine), then to `trackbridge edge` (its own process;
   credentials checked, JSON checked, envelope produced and acknowledged before the answer).
   Requests/s of each, and their ratio. Target: edge >= 0.5 x bare.
2. Latency at a steady offered load: `--rate` requests/s (1,000 by default) sent on a fixed
   schedule for `--seconds`, whatever the answers; latency is scheduled send -> answer, so a slow
   answer delays nothing it should not (no coordinated omission). p50/p99 of each.

The load generator speaks raw HTTP/1.1 over asyncio streams (cheaper per request than any HTTP
client library), so with 2 cores it is the servers, not the clients, that are measured -- though
the client shares the machine, as every figure here does.

Run: `python -m bench.edge` (or `make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "examples" / "sources.toml"
PARTITIONS = 4


def requests(count: int) -> list[bytes]:
    """`count` HTTP/1.1 requests (keep-alive) of the mapping-core mix, ready to write."""
    from bench.mapping_core import build_inputs

    encoded = []
    for raw in build_inputs(count):
        envelope = json.loads(raw)
        body = json.dumps(envelope["body"]).encode()
        head = (
            f"{envelope['method']} {envelope['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {envelope['authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        encoded.append(head.encode() + body)
    return encoded


# -- load generator (its own process) ----------------------------------------------------------


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _closed_loop(port: int, pool: list[bytes], connections: int, seconds: float) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        while time.perf_counter() < deadline:
            status = await _exchange(reader, writer, pool[index % len(pool)])
            statuses[status] = statuses.get(status, 0) + 1
            index += connections
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(connections)))
    elapsed = time.perf_counter() - started
    return {"requests": sum(statuses.values()), "seconds": elapsed, "statuses": statuses}


async def _open_loop(
    port: int, pool: list[bytes], connections: int, rate: float, seconds: float
) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            scheduled, request = item
            status = await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    clients = [asyncio.create_task(client()) for _ in range(connections)]
    total = int(rate * seconds)
    start = time.perf_counter() + 0.1
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, pool[n % len(pool)]))
    for _ in clients:
        queue.put_nowait(None)
    await asyncio.gather(*clients)
    latencies.sort()
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _load(args: argparse.Namespace) -> None:
    pool = requests(2000)
    if args.rate:
        result = asyncio.run(_open_loop(args.port, pool, args.connections, args.rate, args.seconds))
    else:
        result = asyncio.run(_closed_loop(args.port, pool, args.connections, args.seconds))
    print(json.dumps(result))


def _run_load(port: int, connections: int, seconds: float, rate: float = 0.0) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.edge", "--load", "--port", str(port)]
    command += ["--connections", str(connections), "--seconds", str(seconds), "--rate", str(rate)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


# -- the bare handler (its own process) ----------------------------------------------------------


def _serve_bare(port: int) -> None:
    """An aiohttp catch-all that reads the body and answers 200 `{}`: the HTTP ceiling."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application(client_max_size=1_000_000)
    app.router.add_route("*", "/{path:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used (Linux /proc), 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# -- the run ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.edge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measurement")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive client connections")
    parser.add_argument("--rate", type=float, default=1000.0, help="steady offered load, requests/s")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        _load(args)
        return
    if args.bare:
        _serve_bare(args.port)
        return

    from worker import topology
    from worker.config.settings import embedded, load_settings, to_environ
    from worker.config.sources import load_sources
    from worker.local.embedded import EmbeddedBroker, free_port
    from worker.local.process import EdgeProcess

    print(f"\n== edge: the mapping-core request mix, {args.connections} keep-alive connections", flush=True)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="trackbridge-bench-") as tmp:
        settings, explicit = load_settings(
            environ={
                "TRACKBRIDGE_SOURCES": str(SOURCES),
                "TRACKBRIDGE_TOPIC_PREFIX": "e.",
                "TRACKBRIDGE_INPUT_PARTITIONS": str(PARTITIONS),
                "TRACKBRIDGE_OUTPUT_PARTITIONS": str(PARTITIONS),
                "TRACKBRIDGE_EDGE_HOST": "127.0.0.1",
                "TRACKBRIDGE_EDGE_PORT": str(free_port()),
                "TRACKBRIDGE_LOG_LEVEL": "WARNING",
                "TRACKBRIDGE_EDGE_LINGER_MS": os.environ.get("TRACKBRIDGE_EDGE_LINGER_MS", "0"),
            }
        )
        settings = embedded(settings, explicit, broker.bootstrap)
        asyncio.run(topology.create_topics(settings, topology.catalog(settings, load_sources(SOURCES))))

        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "bench.edge", "--bare", "--port", str(bare_port)], cwd=ROOT
        )
        edge = EdgeProcess(to_environ(settings), log_path=Path(tmp) / "edge.log").start()
        try:
            _wait_port(bare_port)
            edge.wait_ready(60)
            _run_load(bare_port, args.connections, 1.0)  # warm both up
            _run_load(edge.web_port, args.connections, 1.0)
            results = {}
            cpu: dict[str, tuple[float, float]] = {}
            broker_pid = broker._process.pid if broker._process is not None else None
            for name, port, pid in (
                ("bare aiohttp handler", bare_port, bare.pid),
                ("trackbridge edge", edge.web_port, edge.pid),
            ):
                before = _cpu_seconds(pid), _cpu_seconds(broker_pid)
                flat = _run_load(port, args.connections, args.seconds)
                cpu[name] = (_cpu_seconds(pid) - before[0], _cpu_seconds(broker_pid) - before[1])
                results[name] = (flat, _run_load(port, args.connections, args.seconds, args.rate))
        finally:
            edge.stop(timeout=30)
            bare.terminate()
            bare.wait(30)

    rates = {name: flat["requests"] / flat["seconds"] for name, (flat, _) in results.items()}
    print(
        f"{'':24} {'requests/s':>11} {'statuses':>22} {'server CPU/req':>15} {'broker CPU/req':>15} "
        f"{f'p50 @ {args.rate:g}/s':>14} {'p99':>9}"
    )
    for name, (flat, steady) in results.items():
        statuses = ",".join(f"{code}:{n}" for code, n in sorted(flat["statuses"].items()))
        server, brokers = (seconds / flat["requests"] * 1e6 for seconds in cpu[name])
        print(
            f"{name:24} {rates[name]:11,.0f} {statuses:>22} {server:12.0f} µs {brokers:12.0f} µs "
            f"{steady['p50'] * 1000:11.1f} ms {steady['p99'] * 1000:6.1f} ms"
        )
    ratio = rates["trackbridge edge"] / rates["bare aiohttp handler"]
    print(f"edge / bare: {ratio:.3f} (target >= 0.5); cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
