"""Public verification under load: GET /v1/verify/{token} of the real service against a bare asyncpg baseline.

    python benchmarks/verify.py                       # sizes 10,000 and 1,000,000; 64 connections; 20 s each
    python benchmarks/verify.py --sizes 10000 --duration 10

For each size the database ``<prefix>_<size>`` is loaded first when it is not already (``load.py``; 1,000,000 rows
take a while). Then, one after the other on loopback, each with 2 uvicorn workers:

* **baseline**: ``baseline_app.py``, a bare FastAPI endpoint doing one asyncpg look-up by verify token;
* **verify**: the real service (``registry serve --workers 2``) on the same database.

``wrk`` drives each with a Lua script that asks for a random loaded token per request, first for a warm-up, then for
the measurement, while worker RSS (VmRSS) is sampled once a second. Printed: requests/s, p50/p99, the ratio
verify/baseline, the scale ratio verify@largest / verify@smallest, peak worker RSS, and each target met or missed.
Measurements wait (bounded) for the 1-minute load average to drop below --max-load, and report the load they saw.
Before each app is measured the who-looked log (``verification_visits``) is emptied (``--keep-visits`` keeps it), so
every run starts from the same tables rather than from the visits of every run before it.

With ``--open-loop``, each app is then also driven open loop (``open_loop.py``: requests sent on a fixed timetable
whatever the answers' speed, latency measured from each request's due time) at ``--open-fraction`` (0.5) of the
requests/s it just reached closed loop, and p50/p99/p99.9 there are printed; target: the service's p99 <= 10 ms at
half its peak at the largest size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import bench_common as common
import httpx
import load
import open_loop

BENCH_DIR = Path(__file__).resolve().parent
TARGET_RATIO = 0.9
TARGET_P99_MS = 30.0
TARGET_SCALE = 0.9
TARGET_RSS_MIB = 200.0
TARGET_OPEN_P99_MS = 10.0

LUA = r"""
-- One random token from the loaded set per request; a summary line for verify.py at the end.
local tokens_path = "@TOKENS@"
local tokens = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
end

function init(args)
  for line in io.lines(tokens_path) do
    tokens[#tokens + 1] = line
  end
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

function request()
  return wrk.format("GET", "/v1/verify/" .. tokens[math.random(#tokens)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True, slots=True)
class Measurement:
    size: int
    app: str
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    worker_rss_mib: list[float]
    load_before: float
    load_after: float
    open_loop: open_loop.OpenLoopResult | None = None
    open_loop_load: float | None = None


def run_wrk(base_url: str, script: Path, *, connections: int, threads: int, seconds: float) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
    ]
    completed = subprocess.run(  # noqa: S603 - fixed command line
        command, capture_output=True, text=True, timeout=seconds + 120, check=True
    )
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH "):
            parsed: dict[str, float] = json.loads(line.removeprefix("BENCH "))
            return parsed
    raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")


def ensure_loaded(url: str, size: int, data_dir: Path, *, reload: bool) -> None:
    if not reload and asyncio.run(load.is_loaded(url, size, data_dir)):
        print(f"{common.database_name(url)}: {size:,} certificates already loaded")
        return
    print(f"{common.database_name(url)}: loading {size:,} certificates (load.py)")
    command = [sys.executable, str(BENCH_DIR / "load.py"), "--database-url", url, "--count", str(size)]
    subprocess.run([*command, "--data-dir", str(data_dir)], check=True)  # noqa: S603 - our own script


HOT_RELATIONS = ("certificates", "holders", "issuers")


async def prewarm(url: str) -> tuple[int, int]:
    """Read the tables verification touches, and their indexes, into shared_buffers (``pg_prewarm``): both apps are
    measured in steady state rather than on whatever the kernel happened to keep cached. Returns (hot set,
    shared_buffers) in bytes."""
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        relations = await connection.fetch(
            "SELECT c.oid::regclass::text AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c "
            "WHERE c.oid = ANY($1::regclass[]) OR c.oid IN "
            "(SELECT indexrelid FROM pg_index WHERE indrelid = ANY($1::regclass[]))",
            list(HOT_RELATIONS),
        )
        for relation in relations:
            await connection.fetchval("SELECT pg_prewarm($1::regclass)", relation["name"])
        shared = await connection.fetchval(
            "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'"
        )
    finally:
        await connection.close()
    return sum(r["bytes"] for r in relations), int(shared)


async def clear_visits(url: str) -> int:
    """Empty the who-looked log (``verification_visits``) and return how many rows it held. Every verification the
    service answers writes one; without this, each run would start with the visits of every run before it (796,408
    after one session's runs), measure a bigger table, and meet autovacuum on it mid-run: runs would not compare."""
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        held: int = await connection.fetchval("SELECT count(*) FROM verification_visits")
        await connection.execute("TRUNCATE verification_visits")
    finally:
        await connection.close()
    return held


def warm(url: str, label: str, *, keep_visits: bool = False) -> None:
    if not keep_visits:
        print(f"  [{label}] emptied the who-looked log ({asyncio.run(clear_visits(url)):,} visits of earlier runs)")
    hot, shared = asyncio.run(prewarm(url))
    mib = 2**20
    print(f"  [{label}] prewarmed {hot / mib:,.0f} MiB of tables and indexes; shared_buffers {shared / mib:,.0f} MiB")
    if hot > shared:
        print(
            f"  [{label}] WARNING: the hot set does not fit in shared_buffers, so look-ups read from the kernel's "
            "cache or the disk, and the figures measure that (see README: PostgreSQL settings)"
        )


def start_baseline(url: str, data_dir: Path) -> common.Server:
    port = common.free_port()
    command = [sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(BENCH_DIR)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning"]
    command += ["--proxy-headers", "--no-server-header"]
    env = {"BENCH_BASELINE_DSN": common.driver_dsn(url)}
    return common.start_server("baseline", command, env=env, port=port, log_dir=data_dir / "logs")


def check_answers(server: common.Server, app: str, tokens: list[str]) -> None:
    """The figures mean nothing unless every answer is a real one: the service must say "valid"."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for token in tokens:
            response = client.get(f"/v1/verify/{token}")
            if response.status_code != 200:
                raise RuntimeError(f"{app}: GET /v1/verify/{token} -> {response.status_code} {response.text[:200]}")
            if app == "verify" and response.json().get("result") != "valid":
                raise RuntimeError(
                    f"verify: token {token} is not valid: {response.text[:300]}\n"
                    "(data loaded by older code? run again with --reload)"
                )


def measure_open_loop(
    server: common.Server, app: str, size: int, peak: float, args: argparse.Namespace, tokens_file: Path
) -> tuple[open_loop.OpenLoopResult, float]:
    """The same server at a fixed share of the peak it just reached, sent on a timetable (no coordinated omission)."""
    rate = round(peak * args.open_fraction)
    tokens = tokens_file.read_text(encoding="ascii").split()
    load_before = common.wait_for_quiet(args.max_load, args.load_wait, label=f"{app}@{size:,} open loop")
    result = open_loop.run_blocking(
        server.base_url, tokens, rate=rate, seconds=args.open_duration, connections=args.open_connections
    )
    print(
        f"  {app:<8} @ {size:>9,} open loop at {rate:,} req/s ({args.open_fraction:.0%} of {peak:,.0f}): "
        f"achieved {result.achieved_rate:,.0f}/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
        f"p99.9 {result.p999_ms:.2f} ms  max {result.max_ms:.1f} ms  errors {result.errors}  "
        f"unfinished {result.unfinished}  scheduler lag p99 {result.scheduler_lag_p99_ms:.2f} ms  "
        f"load {load_before:.2f}",
        flush=True,
    )
    return result, load_before


def measure(
    app: str,
    size: int,
    url: str,
    key: str,
    args: argparse.Namespace,
    script: Path,
    sample: list[str],
    tokens_file: Path,
) -> Measurement:
    data_dir: Path = args.data_dir
    warm(url, f"{app}@{size:,}", keep_visits=args.keep_visits)
    server = common.start_registry("verify", url, key, data_dir) if app == "verify" else start_baseline(url, data_dir)
    try:
        check_answers(server, app, sample)
        run_wrk(server.base_url, script, connections=args.connections, threads=args.threads, seconds=args.warmup)
        load_before = common.wait_for_quiet(args.max_load, args.load_wait, label=f"{app}@{size:,}")
        sampler = common.RssSampler(server)
        with sampler.running():
            result = run_wrk(
                server.base_url, script, connections=args.connections, threads=args.threads, seconds=args.duration
            )
        load_after = common.loadavg()
        opened = None
        if args.open_loop:
            peak = result["requests"] / (result["duration_us"] / 1e6)
            opened = measure_open_loop(server, app, size, peak, args, tokens_file)
    finally:
        server.stop()
    errors = int(sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")))
    measurement = Measurement(
        size=size,
        app=app,
        requests_per_second=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p90_ms=result["p90_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        requests=int(result["requests"]),
        errors=errors,
        worker_rss_mib=[round(kib / 1024, 1) for _, kib in sorted(sampler.peak_kib.items())],
        load_before=round(load_before, 2),
        load_after=round(load_after, 2),
        open_loop=opened[0] if opened else None,
        open_loop_load=round(opened[1], 2) if opened else None,
    )
    print(
        f"  {app:<8} @ {size:>9,}: {measurement.requests_per_second:8,.0f} req/s  p50 {measurement.p50_ms:6.2f} ms  "
        f"p99 {measurement.p99_ms:6.2f} ms  errors {errors}  worker RSS {measurement.worker_rss_mib} MiB  "
        f"load {measurement.load_before:.2f}->{measurement.load_after:.2f}",
        flush=True,
    )
    return measurement


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(results: list[Measurement], sizes: list[int]) -> dict[str, float]:
    by = {(m.app, m.size): m for m in results}
    ratios: dict[str, float] = {}
    print()
    print(f"{'size':>10} {'app':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'RSS MiB':>13} load")
    for m in results:
        rss = "/".join(f"{v:.0f}" for v in m.worker_rss_mib)
        print(
            f"{m.size:>10,} {m.app:<9} {m.requests_per_second:>8,.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f} "
            f"{m.errors:>6} {rss:>13} {m.load_before:.2f}"
        )
    print()
    for size in sizes:
        if ("verify", size) not in by or ("baseline", size) not in by:
            continue
        verify, baseline = by[("verify", size)], by[("baseline", size)]
        ratio = verify.requests_per_second / baseline.requests_per_second
        ratios[f"verify/baseline@{size}"] = ratio
        print(f"verify/baseline @ {size:,}: {ratio:.2f}  (target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)})")
        print(
            f"verify p99 @ {size:,}: {verify.p99_ms:.1f} ms  (target <= {TARGET_P99_MS:.0f} ms: "
            f"{verdict(verify.p99_ms <= TARGET_P99_MS)})"
        )
    if len(sizes) > 1 and ("verify", min(sizes)) in by and ("verify", max(sizes)) in by:
        small, large = min(sizes), max(sizes)
        scale = by[("verify", large)].requests_per_second / by[("verify", small)].requests_per_second
        ratios["scale"] = scale
        print(
            f"scale verify@{large:,} / verify@{small:,}: {scale:.2f}  (target >= {TARGET_SCALE}: "
            f"{verdict(scale >= TARGET_SCALE)})"
        )
    opened = [m for m in results if m.open_loop is not None]
    if opened:
        print(f"\n{'size':>10} {'app':<9} {'rate/s':>7} {'done/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} load")
        for m in opened:
            o = m.open_loop
            assert o is not None
            print(
                f"{m.size:>10,} {m.app:<9} {o.rate:>7,.0f} {o.achieved_rate:>7,.0f} {o.p50_ms:>7.2f} {o.p99_ms:>7.2f} "
                f"{o.p999_ms:>8.2f} {m.open_loop_load:.2f}"
            )
        largest = by.get(("verify", max(sizes)))
        if largest is not None and largest.open_loop is not None:
            p99 = largest.open_loop.p99_ms
            ratios[f"open_loop_p99_ms@{max(sizes)}"] = p99
            print(
                f"verify open-loop p99 at {largest.open_loop.rate:,.0f} req/s @ {max(sizes):,}: {p99:.2f} ms  "
                f"(target <= {TARGET_OPEN_P99_MS:.0f} ms: {verdict(p99 <= TARGET_OPEN_P99_MS)})"
            )
    peak = max((v for m in results if m.app == "verify" for v in m.worker_rss_mib), default=0.0)
    print(
        f"peak verify worker RSS: {peak:.0f} MiB  (target < {TARGET_RSS_MIB:.0f} MiB: {verdict(peak < TARGET_RSS_MIB)})"
    )
    return ratios


# Long: a benchmark's script: arguments, each size and app, the table and the JSON, read top to bottom.
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated certificate counts")
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--prefix", default="bench_verify", help="database name prefix (<prefix>_<size>)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=20, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before each measurement")
    parser.add_argument("--max-load", type=float, default=0.5, help="wait for the 1-min load average below this")
    parser.add_argument("--load-wait", type=float, default=300, help="longest wait for a quiet machine, seconds")
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    parser.add_argument("--apps", default="baseline,verify", help="which servers to measure")
    parser.add_argument("--reload", action="store_true", help="load the databases again even if they look loaded")
    parser.add_argument(
        "--keep-visits", action="store_true", help="keep the who-looked log of earlier runs (emptied by default)"
    )
    parser.add_argument("--open-loop", action="store_true", help="also measure latency at a fixed share of the peak")
    parser.add_argument("--open-fraction", type=float, default=0.5, help="open-loop rate as a share of the peak")
    parser.add_argument("--open-duration", type=float, default=20, help="seconds of open-loop load")
    parser.add_argument("--open-connections", type=int, default=64, help="connections of the open-loop generator")
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    apps = [a for a in args.apps.split(",") if a]
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")

    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    code = common.code_state()  # at the start: the servers run the code as it was then
    print(f"code: {code}")
    print(
        f"wrk: {args.connections} connections, {args.threads} threads, {args.warmup:.0f} s warm-up, "
        f"{args.duration:.0f} s measured; servers: 2 uvicorn workers each, loopback"
    )
    results: list[Measurement] = []
    for size in sizes:
        url = common.database_url(f"{args.prefix}_{size}", args.server)
        name = common.database_name(url)
        ensure_loaded(url, size, args.data_dir, reload=args.reload)
        key = common.master_key_for(args.data_dir, name)
        tokens_file = load.tokens_path(args.data_dir, name)
        script = args.data_dir / f"{name}.lua"
        script.write_text(LUA.replace("@TOKENS@", str(tokens_file)), encoding="utf-8")
        with tokens_file.open(encoding="ascii") as handle:
            tokens = handle.read().split()
        # Checked to answer "valid" before each measurement (not a secret: S311 does not apply).
        sample = random.Random(size).sample(tokens, 10)  # noqa: S311
        del tokens
        for app in apps:
            results.append(measure(app, size, url, key, args, script, sample, tokens_file))
    ratios = report(results, sizes)
    out = args.data_dir / "verify-results.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": common.machine(),
                "code": code,
                "args": {k: str(v) for k, v in vars(args).items()},
                "results": [asdict(m) for m in results],
                "ratios": ratios,
                "finished_in_s": round(time.perf_counter() - STARTED, 1),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"results: {out}")


STARTED = time.perf_counter()

if __name__ == "__main__":
    main()
