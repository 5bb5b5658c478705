"""Where one HTTP batch spends its time: the service run in this process (one uvicorn worker, its batch workers as
configured), the batches posted from a separate process, and the steps of the batch path timed as they run.

    python benchmarks/batch_timeline.py --server postgresql+asyncpg://postgres@127.0.0.1:55432
    REGISTRY_BATCH_WORKERS=0 python benchmarks/batch_timeline.py …     # signing in the serving process

For each batch, each step in the order it started: when it started (ms from the batch's ``issue_batch``), how long it
took (wall), the CPU this process's threads spent meanwhile, the CPU of the batch workers (this process's children)
and of the PostgreSQL server (when it runs on this machine) over the same span. Nested steps are indented; a step that
waits shows wall time well above its CPU. Nothing here is a target: it is the instrument that says which step to work
on (``batch.py`` says whether the work paid).

Run it from outside the checkout when comparing code on ``PYTHONPATH`` (the workers' forkserver puts the current
directory first on ``sys.path``; see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import itertools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_common as common

# (module, attribute): the batch path's steps, outermost first. Each is looked up through its module at call time, so
# wrapping the module's attribute times every caller.
STEPS = (
    ("registry.certificates.issuance", "issue_batch"),
    ("registry.certificates.idempotency", "once"),
    ("registry.certificates.issuance", "screen_rows"),
    ("registry.certificates.awards", "_refuse_live_duplicates"),
    ("registry.certificates.drafting", "begin"),
    ("registry.certificates.drafting", "draw"),
    ("registry.certificates.recording", "record"),
    ("registry.certificates.recording", "_draw"),
    ("registry.certificates.recording", "_hand_over_early"),
    ("registry.certificates.recording", "_drafted"),
    ("registry.holders.service", "upsert"),
    ("registry.certificates.recording", "_fresh_numbers"),
    ("registry.certificates.status_lists", "take_slots"),
    ("registry.certificates.recording", "_insert"),
    ("registry.bulk", "insert_rows"),
    ("registry.bulk", "insert_records"),
    ("registry.certificates.journal", "record"),
    ("registry.audit.service", "append_many"),
    ("registry.audit.service", "append_prepared"),
    ("registry.transparency.service", "append"),
    ("registry.transparency.service", "append_leaves"),
    ("registry.certificates.issuance", "batch_answer"),
)


@dataclass(slots=True)
class Span:
    name: str
    depth: int
    started: float
    cpu: tuple[float, float, float]  # this process, the batch workers, PostgreSQL: CPU seconds so far
    ended: float = 0.0
    spent: tuple[float, float, float] = (0.0, 0.0, 0.0)
    detail: str = ""


def _cpu_seconds(pid: int) -> float:
    """A process's user + system time and that of the children it has reaped (/proc/<pid>/stat fields 14-17, as
    ``bench_common.tree_cpu_seconds`` counts them); 0 once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Recorder:
    """The spans, and which processes count as the batch workers and as PostgreSQL: looked up once per batch (at its
    ``issue_batch``), since walking /proc at every timing point would itself cost milliseconds each time."""

    database_pid: int | None = None
    driver_pid: int | None = None
    spans: list[Span] = field(default_factory=list)
    depth: int = 0
    workers: list[int] = field(default_factory=list)
    database: list[int] = field(default_factory=list)

    def find_processes(self) -> None:
        driver = {self.driver_pid, *common.descendants(self.driver_pid)} if self.driver_pid else set()
        self.workers = [pid for pid in common.descendants(os.getpid()) if pid not in driver]
        if self.database_pid is not None:
            self.database = [self.database_pid, *common.descendants(self.database_pid)]

    def cpu(self) -> tuple[float, float, float]:
        own = time.process_time()  # every thread of this process (the pool's feeder and result threads among them)
        return own, sum(map(_cpu_seconds, self.workers)), sum(map(_cpu_seconds, self.database))

    def begin(self, name: str, detail: str = "") -> Span:
        if name == "issuance.issue_batch":
            self.find_processes()
        span = Span(name, self.depth, time.perf_counter(), self.cpu(), detail=detail)
        self.spans.append(span)
        self.depth += 1
        return span

    def end(self, span: Span) -> None:
        self.depth -= 1
        span.ended = time.perf_counter()
        now = self.cpu()
        span.spent = (now[0] - span.cpu[0], now[1] - span.cpu[1], now[2] - span.cpu[2])

    def point_cost(self) -> float:
        """Seconds one timing point takes (two per step): what each step's figures include of the instrument."""
        started = time.perf_counter()
        for _ in range(20):
            self.cpu()
        return (time.perf_counter() - started) / 20


RECORDER = Recorder()


def _detail(name: str, args: tuple[Any, ...]) -> str:
    if name in ("bulk.insert_rows", "bulk.insert_records") and len(args) > 1:
        return str(getattr(args[1], "name", ""))
    return ""


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            span = RECORDER.begin(name, _detail(name, args))
            try:
                return await function(*args, **kwargs)
            finally:
                RECORDER.end(span)

        return run_async

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        span = RECORDER.begin(name, _detail(name, args))
        try:
            return function(*args, **kwargs)
        finally:
            RECORDER.end(span)

    return run


def instrument() -> None:
    for module_name, attribute in STEPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:  # a module of newer code than the one on PYTHONPATH
            continue
        if not hasattr(module, attribute):  # a step of newer or older code than the one on PYTHONPATH
            continue
        label = f"{module_name.rsplit('.', 1)[-1]}.{attribute}"  # journal.record is not recording.record
        setattr(module, attribute, timed(label, getattr(module, attribute)))


def report(spans: list[Span]) -> None:
    """One batch's steps (the spans from one ``issue_batch``), in the order they started."""
    origin = spans[0].started
    print(f"{'step':<34} {'start':>7} {'wall':>7} {'this':>7} {'workers':>8} {'PG':>7}   (ms)")
    for span in spans:
        label = ("  " * span.depth + span.name + (f" {span.detail}" if span.detail else ""))[:34]
        own, workers, database = (round(value * 1000) for value in span.spent)
        start, wall = round((span.started - origin) * 1000), round((span.ended - span.started) * 1000)
        print(f"{label:<34} {start:>7} {wall:>7} {own:>7} {workers:>8} {database:>7}")
    print()


# --- the driver: a separate process, so its JSON work takes nothing from the service's core -------------------------


def drive(base_url: str, database_url: str, client_id: str, secret: str, batches: int, rows: int) -> None:
    """A warm-up batch of 500, then ``batches`` of ``rows``, ANALYZE after each (as ``batch.py`` does)."""
    import batch
    import httpx
    import orjson

    bodies = [orjson.dumps({"certificates": common.make_rows(rows, offset=i * rows)}) for i in range(batches)]
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(600.0, connect=10.0)) as client:
        token = batch.access_token(client, client_id, secret)
        batch.post_batch(client, token, orjson.dumps({"certificates": common.make_rows(500, offset=10**7)}), 500)
        asyncio.run(batch.analyze(database_url))
        for body in bodies:
            seconds = batch.post_batch(client, token, body, rows)
            print(f"  batch of {rows:,}: {seconds:.2f} s, {rows / seconds:,.0f} certificates/s", flush=True)
            asyncio.run(batch.analyze(database_url))


# --- the service, in this process ------------------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    import batch
    import uvicorn

    url = common.database_url(args.prefix, args.server)
    key = common.master_key_for(args.data_dir, args.prefix)
    client_id, secret = await batch.prepare_http_database(url, key)
    os.environ.update(
        REGISTRY_DATABASE_URL=url,
        REGISTRY_MASTER_KEY=key,
        REGISTRY_ENV="test",
        REGISTRY_LOG_LEVEL="WARNING",
        REGISTRY_DATA_DIR=str(args.data_dir / "registry-data"),
        REGISTRY_DATABASE_READ_URL="",
        REGISTRY_RATE_LIMITS_ENABLED="false",
    )
    instrument()
    from api.app import create_app

    RECORDER.database_pid = await common.postmaster_pid(url)
    port = common.free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 — uvicorn's Server has a flag for it, not an event
        await asyncio.sleep(0.05)
    command = [sys.executable, __file__, "--drive", f"http://127.0.0.1:{port}", url, client_id, secret]
    driver = await asyncio.create_subprocess_exec(*command, str(args.batches), str(args.rows))
    RECORDER.driver_pid = driver.pid
    await driver.wait()
    server.should_exit = True
    await serving
    if driver.returncode != 0:
        raise SystemExit(f"the driver failed (exit {driver.returncode})")
    RECORDER.find_processes()
    print(f"each timing point costs {RECORDER.point_cost() * 1000:.2f} ms (two per step, in its figures)\n")
    starts = [i for i, span in enumerate(RECORDER.spans) if span.name == "issuance.issue_batch"]
    for first, after in itertools.pairwise([*starts[1:], len(RECORDER.spans)]):  # after the warm-up batch
        report(RECORDER.spans[first:after])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--drive":
        base_url, database_url, client_id, secret, batches, rows = sys.argv[2:8]
        drive(base_url, database_url, client_id, secret, int(batches), int(rows))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=3, help="timed batches (one warm-up batch before them)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--prefix", default="bench_timeline", help="the database's name")
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
