"""Whether the brokers answer: a periodic metadata request on a connection of the worker's own.

The consumer and producer keep no record a caller can trust of whether a broker answered lately:
during an outage their clients retry quietly, the consumer keeps its last assignment and its last
high watermark, and everything that reads them (readiness, the lag gauge) goes on reporting the
moment before the outage. So the worker asks for itself: every `interval` seconds (at most 5, a
third of `TRACKBRIDGE_BROKER_TIMEOUT` when that is shorter) a metadata request goes to any
broker over the same network path, TLS and SASL settings as the worker's clients. The time since
the last answer is `trackbridge_broker_unreachable_seconds`; past `TRACKBRIDGE_BROKER_TIMEOUT`
the worker reports itself not ready and its lag as unknown.

This is readiness, not liveness: a broker outage is not fixed by restarting the worker (see
docs/deploy.md, "Health checks").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from worker.config.settings import Settings

logger = logging.getLogger(__name__)

PROBE_INTERVAL_MAX: Final = 5.0


class BrokerProbe:
    """Knows when a broker last answered; `run()` keeps asking."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = settings.broker_timeout
        self.interval = min(PROBE_INTERVAL_MAX, self.timeout / 3)
        self._clock = clock
        self._on_tick = on_tick
        # The worker starts only once a broker has answered (worker.runtime.runner.wait_for_broker).
        self.last_answer = clock()
        self.failing = False
        self._reported = False

    def unreachable_for(self) -> float:
        """Seconds since a broker last answered while the latest request failed; 0 while they answer."""
        return self._clock() - self.last_answer if self.failing else 0.0

    def reachable(self) -> bool:
        """False once no broker has answered for `TRACKBRIDGE_BROKER_TIMEOUT` seconds."""
        return self.unreachable_for() < self.timeout

    def answered(self) -> None:
        if self.failing:
            logger.warning("Kafka brokers answer again, after %.0f s", self._clock() - self.last_answer)
        self.failing = False
        self._reported = False
        self.last_answer = self._clock()

    def failed(self, error: BaseException) -> None:
        if not self.failing:
            logger.warning(
                "Kafka brokers do not answer (%r); asking again every %.0f s", error, self.interval
            )
        self.failing = True
        if not self._reported and not self.reachable():
            self._reported = True
            logger.error(
                "no Kafka broker has answered for %.0f s: not ready, lag unknown, until one does",
                self.unreachable_for(),
            )

    async def run(self) -> None:
        """Ask for metadata every `interval` seconds until cancelled."""
        from aiokafka.client import AIOKafkaClient

        client: Any = AIOKafkaClient(
            bootstrap_servers=list(self.settings.bootstrap_servers),
            client_id=f"trackbridge-{self.settings.group_id}-probe",
            request_timeout_ms=max(1000, int(self.interval * 1000)),
            **self.settings.kafka_auth(),
        )
        bootstrapped = False
        try:
            while True:
                try:
                    async with asyncio.timeout(self.interval * 2):
                        if not bootstrapped:
                            await client.bootstrap()
                            bootstrapped = True
                        else:
                            await client.fetch_all_metadata()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.failed(error)
                else:
                    self.answered()
                if self._on_tick is not None:
                    self._on_tick()
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                await client.close()
