"""Where verification reads go, without a database: the replica's lag as it reports it, and the route's choice between
replica and primary as the replica keeps up, falls behind, fails and comes back (registry.verification.replica)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from registry.verification.replica import ReadRoute, ReadTarget, ReplicaState, fresh_enough, replica_lag


def test_a_standby_streaming_with_nothing_left_to_replay_is_current_however_old_its_last_commit() -> None:
    # An idle primary writes nothing: the last replayed commit grows old while the replica misses nothing.
    assert replica_lag(in_recovery=True, receiving=True, caught_up=True, replay_age=3_600.0) == 0.0


def test_a_standby_with_wal_waiting_to_be_replayed_is_as_far_behind_as_its_last_replayed_commit() -> None:
    assert replica_lag(in_recovery=True, receiving=True, caught_up=False, replay_age=7.5) == 7.5


def test_a_standby_cut_off_from_the_primary_may_have_missed_anything_since_its_last_commit() -> None:
    assert replica_lag(in_recovery=True, receiving=False, caught_up=True, replay_age=42.0) == 42.0


def test_a_standby_that_has_replayed_nothing_and_is_not_streaming_has_an_unknown_lag() -> None:
    assert replica_lag(in_recovery=True, receiving=False, caught_up=None, replay_age=None) is None


def test_a_server_that_is_not_in_recovery_does_not_lag() -> None:
    assert replica_lag(in_recovery=False, receiving=False, caught_up=None, replay_age=None) == 0.0


def test_clock_skew_never_makes_a_negative_lag() -> None:
    assert replica_lag(in_recovery=True, receiving=True, caught_up=False, replay_age=-0.3) == 0.0


@pytest.mark.parametrize(
    ("lag", "fresh"), [(0.0, True), (5.0, True), (5.01, False), (None, False)], ids=["0", "bound", "over", "unknown"]
)
def test_reads_go_to_a_replica_only_within_the_lag_bound(lag: float | None, fresh: bool) -> None:
    assert fresh_enough(lag, max_lag=5.0) is fresh


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class MeasuredRoute(ReadRoute):
    """A route whose replica answers the lag measurement with ``answers``' next item (a lag, or an error to raise)."""

    def __init__(self, clock: Clock, answers: list[Any]) -> None:
        super().__init__(
            _target("primary"), _target("replica"), max_lag=5.0, check_every=1.0, reset_after=10.0, clock=clock
        )
        self.answers = answers

    async def _lag(self) -> float | None:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return cast(float | None, answer)

    async def settled(self) -> ReadTarget:
        """The target a read gets once the measurement it started (if any) is done."""
        self.target()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return self.target()


def _target(name: str) -> ReadTarget:
    return ReadTarget(name, cast(AsyncEngine, None), None, cast(async_sessionmaker[Any], None))


async def test_reads_go_to_the_primary_until_the_replica_is_measured_then_follow_its_lag() -> None:
    clock = Clock()
    route = MeasuredRoute(clock, [0.2, 9.0, 0.1])
    assert route.target() is route.primary  # not measured yet: no read waits for the measurement
    assert (await route.settled()) is route.replica
    clock.now += 0.5
    assert route.target() is route.replica  # measured at most once a second
    clock.now += 1.0
    assert (await route.settled()) is route.primary
    assert (route.state, route.lag) == (ReplicaState.lagging, 9.0)
    clock.now += 1.0
    assert (await route.settled()) is route.replica


async def test_a_replica_that_fails_a_read_is_left_alone_until_the_breaker_lets_one_measurement_through() -> None:
    clock = Clock()
    route = MeasuredRoute(clock, [0.0, ConnectionRefusedError(), 0.0])
    replica = await route.settled()
    assert replica is route.replica
    assert route.fallback(replica, ConnectionRefusedError()) is route.primary  # the read runs again on the primary
    assert route.fallback(route.primary, ConnectionRefusedError()) is None  # the primary failing is answered 503
    assert route.fallback(replica, ValueError("a bug, not the database")) is None
    clock.now += 5.0
    assert (await route.settled()) is route.primary  # the breaker is open: nothing is asked of the replica
    assert len(route.answers) == 2
    clock.now += 10.0
    assert (await route.settled()) is route.primary  # half open: the one trial measurement fails, open again
    assert route.state is ReplicaState.down
    clock.now += 10.0
    assert (await route.settled()) is route.replica  # the next trial succeeds
    assert route.answers == []
