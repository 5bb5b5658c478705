"""A warning a client can cause once per connection (the server's 408s) is logged once, then counted: a flood of slow
clients writes one line an interval, with how many came, not one line each."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from api.logs import RepeatedWarnings

INTERVAL = 1.0


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "test.repeated"]


async def test_a_flood_of_one_warning_is_one_line_and_then_one_count_an_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repeated = RepeatedWarnings(logging.getLogger("test.repeated"), interval=INTERVAL)
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING, logger="test.repeated"):
        started = loop.time()
        for seconds in range(1000):
            repeated.warning("closed a connection after %d s (408)", seconds)
        repeated.warning("refused a request of %d bytes (431)", 1)  # another kind: its own first line
        assert _said(caplog) == ["closed a connection after 0 s (408)", "refused a request of 1 bytes (431)"]

        await asyncio.sleep(INTERVAL * 1.2)
        assert _said(caplog)[2:] == ["999 more in the last 1 s, the latest: closed a connection after 999 s (408)"]
        repeated.warning("closed a connection after %d s (408)", 1000)  # the flood goes on: counted again
        assert loop.time() < started + 2 * INTERVAL, "too slow a machine for this test's timing"
        assert len(_said(caplog)) == 3

        await asyncio.sleep(started + 3.2 * INTERVAL - loop.time())  # the second interval's count, then one with none
        assert _said(caplog)[3:] == ["1 more in the last 1 s, the latest: closed a connection after 1000 s (408)"]
        repeated.warning("closed a connection after %d s (408)", 7)  # after an interval with none: the first again
        assert _said(caplog)[4:] == ["closed a connection after 7 s (408)"]


def test_without_an_event_loop_every_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    repeated = RepeatedWarnings(logging.getLogger("test.repeated"), interval=INTERVAL)
    with caplog.at_level(logging.WARNING, logger="test.repeated"):
        for seconds in range(3):
            repeated.warning("closed a connection after %d s (408)", seconds)
    assert len(_said(caplog)) == 3


async def test_a_warning_before_the_due_count_is_logged_keeps_the_count(caplog: pytest.LogCaptureFixture) -> None:
    """In a flood, a connection's callback can run after the interval ended but before its count's timer (I/O
    callbacks run before the timers that fell due in the same loop iteration): the count is still logged, first."""
    interval = 0.5
    repeated = RepeatedWarnings(logging.getLogger("test.repeated"), interval=interval)
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING, logger="test.repeated"):
        started = loop.time()
        for seconds in range(6):
            repeated.warning("closed a connection after %d s (408)", seconds)
        time.sleep(interval * 1.2)  # noqa: ASYNC251 -- the point: the loop is busy past the interval's end
        repeated.warning("closed a connection after %d s (408)", 6)
        assert loop.time() < started + 2 * interval, "too slow a machine for this test's timing"
        assert _said(caplog) == [
            "closed a connection after 0 s (408)",
            "5 more in the last 0.5 s, the latest: closed a connection after 5 s (408)",
        ]
        await asyncio.sleep(started + 2.2 * interval - loop.time())  # the next interval's count: the late one
        assert _said(caplog)[2:] == ["1 more in the last 0.5 s, the latest: closed a connection after 6 s (408)"]
