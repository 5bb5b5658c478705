"""The read replica that can fail: verification reads go to it while it answers and has replayed the primary's commits
up to ``REGISTRY_READ_MAX_LAG_SECONDS`` ago, and to the primary otherwise.

The lag is measured in the background, at most every ``REGISTRY_READ_LAG_CHECK_SECONDS``: no request waits for it. A
replica that fails a read or a measurement opens the breaker (registry.breaker, after one failure): reads go straight
to the primary for ``REGISTRY_READ_REPLICA_RESET_SECONDS``, then one measurement decides whether they go back. A read
that met the replica unreachable, or lost its connection to it, runs once more on the primary (it changes nothing), so
a replica that dies costs the reads in flight one connect timeout (``REGISTRY_READ_REPLICA_TIMEOUT_SECONDS``), not
every read one. Without a replica every read goes to the primary and nothing is measured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from registry.breaker import Breaker, BreakerState
from registry.db import is_sqlite
from registry.errors import CircuitOpen
from registry.faults import Fault, Reads, database_fault
from registry.verification.readpool import ReadPool

log = logging.getLogger(__name__)
T = TypeVar("T")

# What the replica knows of its own lag: one statement, no table read.
_LAG = text(
    "SELECT pg_is_in_recovery() AS in_recovery,"
    " EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS receiving,"
    " pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() AS caught_up,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS replay_age"
)
# The faults that mean "this replica cannot serve now"; busy pools and errors in the query itself are answered as such.
# A lock wait past its bound (Fault.locked) too: on a hot standby the locks are replayed from the primary (a migration's
# ALTER TABLE, vacuum truncating a table), which answers the read instead.
_REPLICA_DOWN = frozenset({Fault.unreachable, Fault.connection_lost, Fault.locked})


def replica_lag(
    *, in_recovery: bool, receiving: bool, caught_up: bool | None, replay_age: float | None
) -> float | None:
    """How many seconds behind the primary a replica is, None when it cannot tell.

    ``replay_age`` (now minus the commit time of the last transaction replayed) alone would call the replica of an idle
    primary further behind every second, though there is nothing to replay: while a WAL receiver streams and everything
    received has been replayed, the replica is current. Without a receiver it may have missed anything since its last
    replayed commit, so that commit's age is its lag.
    """
    if not in_recovery:
        return 0.0  # not a standby: a promoted replica, or a read URL that names a primary (or a pooler in front)
    if receiving and caught_up:
        return 0.0
    if replay_age is None:
        return None  # nothing replayed since it started, and not streaming: no telling how far behind it is
    return max(0.0, replay_age)


def fresh_enough(lag: float | None, *, max_lag: float) -> bool:
    """Whether verification may read from a replica this far behind (an unknown lag is not fresh)."""
    return lag is not None and lag <= max_lag


class ReplicaState(StrEnum):
    unchecked = "unchecked"  # not measured yet: reads go to the primary until the first measurement
    ok = "ok"
    lagging = "lagging"
    down = "down"


@dataclass(frozen=True, slots=True)
class ReadTarget:
    """A database verification can read from: its engine, its driver pool (PostgreSQL only), sessions on the engine."""

    name: str
    engine: AsyncEngine
    pool: ReadPool | None
    sessions: async_sessionmaker[AsyncSession]


class ReadRoute:
    """Where verification reads go now: ``target()`` before a read, ``fallback(target, error)`` after one failed."""

    def __init__(
        self,
        primary: ReadTarget,
        replica: ReadTarget | None = None,
        *,
        max_lag: float = 5.0,
        check_every: float = 1.0,
        reset_after: float = 5.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        self.check_every = check_every
        self.timeout = timeout
        self.breaker = Breaker(threshold=1, reset_after=reset_after, clock=clock)
        self._clock = clock
        self.state = ReplicaState.unchecked
        self.lag: float | None = None
        self._checked_at: float | None = None
        self._checking: asyncio.Task[None] | None = None

    def target(self) -> ReadTarget:
        """The replica while it is fresh enough and its breaker closed, else the primary; starts a measurement when
        one is due, without waiting for it."""
        if self.replica is None:
            return self.primary
        self._measure_if_due()
        return self.replica if self.state is ReplicaState.ok else self.primary

    def fallback(self, target: ReadTarget, error: BaseException) -> ReadTarget | None:
        """The primary, when ``error`` is the replica failing a read (unreachable, or the connection lost): the read
        runs once more there, and the next ones go there at once. None when the read should fail as it is."""
        if target is self.primary or database_fault(error) not in _REPLICA_DOWN:
            return None
        self._failed(error)
        return self.primary

    async def report(self) -> dict[str, Any] | None:
        """The replica's state for /readyz (measured now if a measurement is due): state, lag, breaker."""
        if self.replica is None:
            return None
        self._measure_if_due()
        if self._checking is not None:
            await asyncio.shield(self._checking)
        report: dict[str, Any] = {"state": self.state.value, "breaker": self.breaker.state.value}
        if self.lag is not None:
            report["lag_seconds"] = round(self.lag, 3)
        return report

    def _measure_if_due(self) -> None:
        if self._checking is not None:
            return
        breaker = self.breaker.state
        stale = self._checked_at is None or self._clock() - self._checked_at >= self.check_every
        if (breaker is BreakerState.closed and stale) or breaker is BreakerState.half_open:
            self._checking = asyncio.get_running_loop().create_task(self._measure())

    async def _measure(self) -> None:
        try:
            self.breaker.before_call()  # half open: this is the one trial
        except CircuitOpen:
            self._checking = None
            return
        try:
            # To connect, then to answer; a bound of its own, so no measurement hangs on a replica that never answers.
            async with asyncio.timeout(2 * self.timeout):
                lag = await self._lag()
        except Exception as error:  # whatever keeps the replica from answering keeps it from serving
            self._failed(error)
            return
        finally:
            self._checked_at = self._clock()
            self._checking = None
        self.breaker.succeeded()
        self.lag = lag
        self._settle(ReplicaState.ok if fresh_enough(lag, max_lag=self.max_lag) else ReplicaState.lagging)

    async def _lag(self) -> float | None:
        try:
            return await self._lag_once()
        except Exception as error:
            # A pooled connection from before the replica restarted: SQLAlchemy has thrown it away, ask a fresh one.
            if database_fault(error) is not Fault.connection_lost:
                raise
        return await self._lag_once()

    async def _lag_once(self) -> float | None:
        assert self.replica is not None
        engine = self.replica.engine
        if is_sqlite(str(engine.url)):
            return 0.0  # a file has no replication to lag behind
        async with engine.connect() as connection:
            row = (await connection.execute(_LAG)).one()
        return replica_lag(
            in_recovery=row.in_recovery, receiving=row.receiving, caught_up=row.caught_up, replay_age=row.replay_age
        )

    def _failed(self, error: BaseException) -> None:
        self.breaker.failed()
        self.lag = None
        self._settle(ReplicaState.down, cause=type(error).__name__)

    def _settle(self, state: ReplicaState, *, cause: str = "") -> None:
        """Record the replica's state; say in the log when reads change sides (never a URL: it may hold a password)."""
        was, self.state = self.state, state
        if state is was:
            return
        if state is ReplicaState.ok:
            log.info("verification reads go to the replica (lag %.1f s)", self.lag or 0.0)
        elif state is ReplicaState.lagging:
            behind = "an unknown time" if self.lag is None else f"{self.lag:.1f} s"
            log.warning("verification reads go to the primary: the replica lags %s (bound %s s)", behind, self.max_lag)
        else:
            log.warning(
                "verification reads go to the primary: the replica failed (%s); asked again in %s s",
                cause,
                self.breaker.reset_after,
            )

    async def close(self) -> None:
        """Stop a measurement under way; close both driver pools and the replica's engine (not the primary's)."""
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)
        for target in (self.primary, self.replica):
            if target is not None and target.pool is not None:
                await target.pool.close()
        if self.replica is not None:
            await self.replica.engine.dispose()


class RoutedReads(Reads):
    """``Reads`` on the replica while it serves, run once more on the primary when the replica fails under it."""

    __slots__ = ("_route", "_target")

    def __init__(self, route: ReadRoute) -> None:
        self._route = route
        self._target = route.target()
        super().__init__(self._target.sessions)

    async def __call__(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        try:
            return await super().__call__(work)
        except Exception as error:
            fallback = self._route.fallback(self._target, error)
            if fallback is None:
                raise
        return await Reads(fallback.sessions)(work)
