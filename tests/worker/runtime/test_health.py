"""worker/runtime/health.py: when the brokers count as unreachable, and what is logged about it."""

from __future__ import annotations

import logging

import pytest

from worker.config.settings import load_settings
from worker.runtime.health import BrokerProbe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _probe(clock: Clock, timeout: str = "30") -> BrokerProbe:
    settings, _ = load_settings(environ={"TRACKBRIDGE_BROKER_TIMEOUT": timeout})
    return BrokerProbe(settings, clock=clock)


def test_the_probe_asks_at_most_every_5_s_and_three_times_within_the_timeout() -> None:
    assert _probe(Clock()).interval == 5.0
    assert _probe(Clock(), "3").interval == 1.0


def test_unreachable_only_past_the_timeout_counted_from_the_last_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    probe = _probe(clock)
    assert probe.unreachable_for() == 0 and probe.reachable()
    clock.now += 5
    probe.answered()
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="worker.runtime.health"):
        probe.failed(OSError("cut"))
        assert probe.unreachable_for() == 5 and probe.reachable()
        clock.now += 24.9
        probe.failed(OSError("cut"))
        assert probe.reachable()
        clock.now += 0.2
        assert not probe.reachable()
        probe.failed(OSError("cut"))
        probe.failed(OSError("cut"))
        clock.now += 10
        probe.answered()
    assert probe.unreachable_for() == 0 and probe.reachable()
    assert [record.levelname for record in caplog.records] == ["WARNING", "ERROR", "WARNING"]
    assert "no Kafka broker has answered for 30 s" in caplog.records[1].getMessage()
    assert caplog.records[2].getMessage() == "Kafka brokers answer again, after 40 s"
