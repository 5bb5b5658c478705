"""What counts as a database fault (503 with Retry-After), and what does not (a bug: 500; a refusal: its own 4xx)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
import sqlalchemy.exc

from registry.errors import ServiceUnavailable
from registry.faults import RETRY_AFTER_SECONDS, Fault, database_fault, unavailable


def _wrapped(cause: BaseException, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    """As SQLAlchemy raises a driver error: its own wrapper, the driver's error as the cause."""
    try:
        try:
            raise cause
        except BaseException as error:
            raise sqlalchemy.exc.InterfaceError("SELECT 1", {}, error, connection_invalidated=invalidated) from error
    except sqlalchemy.exc.DBAPIError as wrapper:
        return wrapper


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"), "lost"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), "lost"),
        (asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"), "lost"),
        (asyncpg.InterfaceError("cannot call Connection.fetchrow(): connection is closed"), "lost"),
        (ConnectionError("unexpected connection_lost() call"), "lost"),
        (_wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")), "lost"),
        (_wrapped(ValueError("a statement on a connection SQLAlchemy saw die"), invalidated=True), "lost"),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), "unreachable"),
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"), "unreachable"),
        (TimeoutError(), "unreachable"),
        (sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"), "busy"),
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), "busy"),
        (asyncpg.exceptions.LockNotAvailableError("canceling statement due to lock timeout"), "locked"),
        (_wrapped(asyncpg.exceptions.LockNotAvailableError("canceling statement due to lock timeout")), "locked"),
        (_wrapped(_sqlite_error("database is locked", sqlite3.SQLITE_BUSY)), "locked"),
        (_sqlite_error("database is locked", sqlite3.SQLITE_BUSY | (2 << 8)), "locked"),  # SQLITE_BUSY_SNAPSHOT
    ],
)
def test_database_faults_are_recognised_through_the_errors_that_wrap_them(error: BaseException, fault: str) -> None:
    expected = {
        "lost": Fault.connection_lost,
        "unreachable": Fault.unreachable,
        "busy": Fault.busy,
        "locked": Fault.locked,
    }[fault]
    assert database_fault(error) is expected


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
        _wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        FileNotFoundError(2, "No such file or directory"),
        _sqlite_error("no such table: certificates", sqlite3.SQLITE_ERROR),
    ],
)
def test_bugs_and_refusals_are_not_database_faults(error: BaseException) -> None:
    assert database_fault(error) is None


def test_a_fault_is_answered_503_with_a_retry_after() -> None:
    answer = unavailable(Fault.unreachable)
    assert isinstance(answer, ServiceUnavailable)
    assert answer.status == 503
    assert answer.headers() == {"Retry-After": str(RETRY_AFTER_SECONDS[Fault.unreachable])}
    assert answer.problem()["type"].endswith("/service-unavailable")
