"""The worker processes that validate, sign and seal large batches and imports on several cores
(``REGISTRY_BATCH_WORKERS``): work is handed over in chunks (``hand_over``) and its results collected in order
(``results``); a chunk the pool cannot take or give back (a broken pool, a value pickle cannot write) is done in the
caller's process instead.

One pool per process: ``registry serve`` starts it with the application when ``REGISTRY_BATCH_WORKERS`` is 2 or more
(``start``) — by default, one worker per core on a machine of two or more — and ``registry import`` on its first
large chunk; it is shut down with the application (its lifespan) or at the end of a ``registry`` command. With 0 or 1
(or on one core) there are no child processes at all. The workers
are started by a fork server, not forked from the caller: a worker forked from ``registry serve`` would inherit its
listening socket and database connections. Each worker ends when this process does, even by ``kill -9``
(``_die_with``), and the fork server follows.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

# What the fork server imports once, so that every worker starts with the validation and signing code loaded.
_PRELOAD = ["registry.certificates.minting", "registry.certificates.rows"]
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


# How much lower than the server's the workers' CPU priority is (nice(2)): a worker takes a core that would otherwise
# idle, and yields it to the process that hands it work and answers requests (see ``_start``).
NICENESS = 10


def _start(owner: int) -> None:
    """Run in each worker as it starts. Signing is the part of a batch that can wait: the serving process records
    holders, numbers and slots while the workers sign, and everything after waits on it, so it must not be the one
    that gets less CPU when the cores are busy; nor must a verification answered by the other serving process wait
    behind a batch's signatures. (Validation cannot wait: the serving process screens each chunk as it comes back.
    On an idle machine the workers and the serving process keep both cores busy while a batch is read; on one whose
    other core is busy with work at normal priority, a niced worker validates more slowly than the serving process
    would have. Measured only on the idle case: benchmarks/README.md, "Rows validated in the workers".)"""
    os.nice(NICENESS)
    _die_with(owner)


def _die_with(owner: int) -> None:
    """Run in each worker as it starts: a thread that ends the worker as soon as ``owner`` (the process that made
    the pool) has exited, however it exited. A worker's parent is the fork server, and the fork server waits for its
    children's copies of its lifeline to close: without this, ``kill -9`` of the server would leave both running."""
    threading.Thread(target=_watch, args=(owner,), name="registry-owner-watch", daemon=True).start()


def _watch(owner: int) -> None:
    try:
        handle = os.pidfd_open(owner)  # Linux: readable once the process has exited
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd here: look once a second
        while _exists(owner):
            time.sleep(1.0)
        os._exit(1)
    select.select([handle], [], [])
    os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Pools:
    """This process's one pool (a class, not module globals, so that tests and shutdown see the same one)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: ProcessPoolExecutor | None = None
        self.size = 0


_POOLS = _Pools()


def pool(count: int) -> ProcessPoolExecutor | None:
    """The pool of ``count`` workers (made now if need be), or None for ``count`` 0 or 1: work stays in process."""
    if count <= 1:
        return None
    with _POOLS.lock:
        if _POOLS.pool is None or _POOLS.size != count:
            if _POOLS.pool is not None:
                _POOLS.pool.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            _POOLS.pool = ProcessPoolExecutor(
                max_workers=count, mp_context=context, initializer=_start, initargs=(os.getpid(),)
            )
            _POOLS.size = count
        return _POOLS.pool


def pool_for(rows: int, *, count: int, min_rows: int) -> ProcessPoolExecutor | None:
    """The pool to share work on ``rows`` rows among ``count`` workers, or None to do it in this process: fewer rows
    than ``min_rows`` (handing them over would cost more than it saves) or no workers (0 or 1)."""
    if rows < min_rows or count <= 1:
        return None
    return pool(count)


def start(count: int) -> None:
    """Make the pool of ``count`` workers now and wait until every one has started (nothing for 0 or 1).

    A pool starts its workers one per task handed to it; the first large batch after the server started would wait
    for the fork server, the imports and each worker in turn (2.4 s of a 3.8 s batch here). Starting them with the
    server moves that wait out of anybody's request, and a pool whose workers all run never starts one later, in the
    middle of a batch."""
    made = pool(count)
    if made is None:
        return
    try:
        for _ in range(3):  # a worker that finished its task before the next was handed out takes that one too: again
            for ready in [made.submit(_ready) for _ in range(count)]:  # each task the pool cannot hand to an idle
                ready.result(timeout=120)  # worker makes it start one, up to ``count``
            if len(made._processes or {}) >= count:
                return
    except (BrokenProcessPool, OSError, TimeoutError) as exc:
        # Batches seal in process without a pool: a server that cannot start its workers still serves.
        log.warning("batch workers: could not start %d (%s); batches will sign in process", count, type(exc).__name__)
        discard(made)


def _ready() -> None:
    time.sleep(0.05)  # long enough that no worker is idle again before every task has been handed out


def discard(broken: ProcessPoolExecutor) -> None:
    """Forget a pool that broke (a worker died), so that the next batch makes a new one, and kill what is left of it.

    CPython's own clean-up of a broken pool terminates the workers it lists at that moment. A worker started by a
    ``submit`` racing with the breakage is listed a moment later and survives; it then waits for ever on the task
    queue's lock, which the killed worker held, nobody reads the queue, the pool's feeder thread blocks on the full
    pipe, and the interpreter never exits (it joins that thread at exit). So every worker the pool lists now is
    killed: a broken pool has nothing worth finishing."""
    with _POOLS.lock:
        if _POOLS.pool is broken:
            _POOLS.pool, _POOLS.size = None, 0
    listed = list((broken._processes or {}).values())  # shutdown() forgets them
    broken.shutdown(wait=False, cancel_futures=True)
    for process in listed:
        if process.is_alive():
            process.kill()


def shutdown() -> None:
    """Stop the workers and wait for them to exit; the next batch would make a new pool."""
    with _POOLS.lock:
        current, _POOLS.pool, _POOLS.size = _POOLS.pool, None, 0
    if current is None:
        return
    if current._broken:  # a worker died between batches: waiting for the rest could wait for ever (see discard)
        discard(current)
        return
    current.shutdown(wait=True, cancel_futures=True)


def running() -> bool:
    return _POOLS.pool is not None


@dataclass(frozen=True, slots=True)
class _Raised:
    """What a chunk's function raised in a worker, handed back as a result: told apart from a chunk that could not
    go through the pool at all, which ``results`` does again here."""

    error: Exception


def _run(function: Callable[[Sequence[_Item]], _Result], items: Sequence[_Item]) -> _Result | _Raised:
    """A chunk's work, in a worker."""
    try:
        return function(items)
    except Exception as exc:  # handed back to ``results``, which raises it in the caller
        return _Raised(exc)


@dataclass
class Handed(Generic[_Item, _Result]):
    """Work handed to a pool (``hand_over``): ``function`` over each chunk of ``size`` items, each chunk's future in
    order; no futures when the hand-over failed and the work is to be done in this process."""

    pool: ProcessPoolExecutor
    function: Callable[[Sequence[_Item]], _Result]
    items: Sequence[_Item]
    size: int
    futures: list[Future[_Result | _Raised]]

    def cancel(self) -> None:
        """Work not started is dropped: a failed or abandoned batch leaves nothing queued behind it."""
        for future in self.futures:
            future.cancel()


def hand_over(
    pool: ProcessPoolExecutor, function: Callable[[Sequence[_Item]], _Result], items: Sequence[_Item], *, size: int
) -> Handed[_Item, _Result]:
    """Every chunk of ``items`` handed to the pool at once, so the workers start at once and stay ahead of whoever
    collects the results (``results``). ``function`` must be picklable (a module-level function, or a
    ``functools.partial`` of one). A pool that is broken (a worker killed) is dropped; a hand-over that fails leaves
    the work to be done here, in the caller's process."""
    handed = Handed(pool, function, items, size, [])
    try:
        for start in range(0, len(items), size):
            handed.futures.append(pool.submit(_run, function, items[start : start + size]))
    except (RuntimeError, OSError):
        # BrokenProcessPool (a RuntimeError); RuntimeError also for a pool shut down meanwhile (the app stopping) or
        # a thread that cannot start; OSError e.g. for a worker started while the pool broke that found it closed.
        handed.cancel()
        handed.futures = []
        if pool._broken:  # only a broken pool goes: a healthy one may be serving another batch at this moment
            discard(pool)
    return handed


async def results(handed: Handed[_Item, _Result]) -> AsyncGenerator[_Result, None]:
    """Each chunk's result in order, as soon as it and those before it are done. If the pool breaks, the chunks not
    yet done are done here: the same results, more slowly; so is a chunk that cannot be sent to a worker or whose
    result cannot come back. An error ``function`` raises in a worker is raised here. Close it (``aclosing``) to
    cancel what is still queued at once."""
    futures = handed.futures
    try:
        for index, start in enumerate(range(0, len(handed.items), handed.size)):
            if index < len(futures):
                try:
                    result = await asyncio.wrap_future(futures[index])
                except BrokenProcessPool:
                    discard(handed.pool)
                    futures = futures[:index]
                except Exception as exc:
                    # The chunk did not reach a worker, or its result did not come back: e.g. a value nested deeper
                    # than pickle can write (JSON takes ~880 levels, pickle ~490). Done here instead.
                    log.warning(
                        "batch workers: a chunk could not go through the pool (%s); done here", type(exc).__name__
                    )
                else:
                    if isinstance(result, _Raised):
                        raise result.error  # raised by ``function`` in the worker: the chunk's own error
                    yield result
                    continue
            yield handed.function(handed.items[start : start + handed.size])
    finally:
        handed.cancel()
