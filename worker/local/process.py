"""`trackbridge worker` in a child process: started, waited for, stopped or killed.

Used by `trackbridge demo`, the integration tests and the worker benchmark, so all three run the
worker exactly as production does (its own process, its own event loop, signals included).
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

from worker import web
from worker.config.settings import env_name


class WorkerProcessError(Exception):
    """The worker process exited or did not become ready."""


class WorkerProcess:
    """One `trackbridge worker` child process configured by `environ` (TRACKBRIDGE_* variables).

    Its output goes to `log_path` (a temporary file by default).
    """

    command = "worker"
    """The `trackbridge` subcommand the process runs."""
    port_setting = "web_port"
    """The setting naming the port of its /healthz, /readyz and /metrics."""
    default_port = 6066

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.environ = {**os.environ, **environ}
        self.args = list(args)
        self.web_port = int(self.environ.get(env_name(self.port_setting), str(self.default_port)))
        self.scheme = "http"
        self._context: ssl.SSLContext | None = None
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> Self:
        if self.log_path is None:
            prefix = f"trackbridge-{self.command}-"
            handle = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log", delete=False)  # noqa: SIM115
            self.log_path = Path(handle.name)
            self._log = handle
        else:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli.main", self.command, *self.args],
            env=self.environ,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def url(self) -> str:
        """Where its pages are, on loopback."""
        return f"{self.scheme}://127.0.0.1:{self.web_port}"

    def ready(self) -> bool:
        """True when the worker's /readyz answers 200 (in the group, partitions assigned)."""
        return self._answers(web.READYZ)

    def healthy(self) -> bool:
        """True when the worker's /healthz answers 200 (alive, maybe still waiting for Kafka)."""
        return self._answers(web.HEALTHZ)

    def serving(self) -> bool:
        """True once the worker's own web server answers /readyz (ready or not), rather than the
        pages `worker.runtime.runner.waiting_pages` serves while the worker waits for Kafka."""
        url = f"{self.url}{web.READYZ}"
        try:
            with urllib.request.urlopen(url, timeout=1, context=self._context) as response:
                body = response.read()
        except urllib.error.HTTPError as error:  # 503: not ready
            body = error.read()
        except (urllib.error.URLError, OSError):
            return False
        return b"waiting_for" not in body

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=1, context=self._context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once /readyz answers 200; raise if the process exits or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise WorkerProcessError(
                    f"the {self.command} exited with status {self.returncode}; log: {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        raise WorkerProcessError(
            f"the {self.command} was not ready within {timeout:g} s; log: {self.log_path}"
        )

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}{web.METRICS}", timeout=5, context=self._context) as response:
            return str(response.read().decode())

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; SIGKILL if it takes longer than `timeout`. Returns the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL: the worker dies mid-whatever, as in a crash or an OOM kill."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()
        return self.process.returncode

    def log_text(self) -> str:
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class EdgeProcess(WorkerProcess):
    """`trackbridge edge` in a child process: the same life cycle, its pages on the edge port
    (over HTTPS when it serves TLS; its certificate is not verified on this loopback check)."""

    command = "edge"
    port_setting = "edge_port"
    default_port = 8080

    def serving_soon(self, timeout: float = 30.0) -> bool:
        """True once /healthz answers (it serves before Kafka answers); False if it exits first
        or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.returncode is None:
            if self.healthy():
                return True
            time.sleep(0.1)
        return False

    def __init__(
        self, environ: Mapping[str, str], *, args: Sequence[str] = (), log_path: Path | None = None
    ) -> None:
        super().__init__(environ, args=args, log_path=log_path)
        if self.environ.get(env_name("edge_tls_certfile")):
            self.scheme = "https"
            self._context = ssl.create_default_context()
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE
