"""A storm of scans of a few QR codes through the shipped nginx cache, against the registry alone; then how long a
revocation takes to reach scanners behind the cache.

    python benchmarks/proxy.py                         # 10,000 certificates, 5 hot codes, 64 connections, 20 s each
    python benchmarks/proxy.py --hot 1 --duration 10 --max-age 10

The database ``<prefix>_<count>`` is loaded by ``load.py`` when it is not already. The real service
(``registry serve --workers 2``, REGISTRY_VERIFY_MAX_AGE_SECONDS=--max-age) and nginx running
``deploy/nginx/talent-registry.conf`` as shipped (its own prefix and temp folders under the data dir, ``daemon off``,
free ports; tests/integration/nginx_support.py) start on loopback. ``wrk`` asks for a random one of ``--hot`` codes
on every request, first straight at the service, then through nginx (a warm-up, then the timed run, each). Printed:
requests/s, p50/p99 and errors for each, the ratio, and the cache statuses nginx logged during the timed run.

Then the revocation: a code not scanned yet is scanned once through nginx (a MISS: nginx now holds a fresh "valid"
for max-age, the worst case), its certificate is revoked through nginx with an issuer token, and a scanner polls
through nginx every 50 ms until it sees ``revoked``. Printed: that delay against max-age.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import bench_common as common
import httpx
import load
import verify

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the nginx harness the proxy test uses too
from tests.integration.nginx_support import Nginx  # noqa: E402

POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Storm:
    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cache_statuses: dict[str, int]
    load_before: float


@dataclass(frozen=True, slots=True)
class Revocation:
    max_age_seconds: int
    cached_to_revoked_s: float
    revoked_to_seen_s: float
    polls: int
    direct_result_after_revoke: str


async def active_certificates(url: str, tokens: list[str]) -> dict[str, str]:
    """token -> number for those of ``tokens`` still active (an earlier run revoked one)."""
    connection = await asyncpg.connect(common.driver_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT verify_token, number FROM certificates WHERE verify_token = ANY($1::text[]) AND status = 'active'",
            tokens,
        )
    finally:
        await connection.close()
    return {r["verify_token"]: r["number"] for r in rows}


async def issuer_credentials(url: str, key: str) -> tuple[str, str]:
    """An issuer client of the benchmark's evaluation body, made as `registry clients create` makes one."""
    from registry.config import Settings
    from registry.context import RegistryContext
    from registry.db import create_engine

    ctx = RegistryContext.from_settings(Settings(database_url=url, master_key=key, env="test"))
    engine = create_engine(url)
    try:
        return await load.issuer_client(ctx, engine, name="proxy benchmark")
    finally:
        await engine.dispose()


def storm(label: str, base_url: str, script: Path, args: argparse.Namespace, proxy: Nginx | None) -> Storm:
    verify.run_wrk(base_url, script, connections=args.connections, threads=args.threads, seconds=args.warmup)
    load_before = common.wait_for_quiet(args.max_load, args.load_wait, label=label)
    before = proxy.cache_statuses() if proxy else {}
    result = verify.run_wrk(base_url, script, connections=args.connections, threads=args.threads, seconds=args.duration)
    time.sleep(1.5)  # the access log is flushed once a second
    after = proxy.cache_statuses() if proxy else {}
    errors = int(sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")))
    measured = Storm(
        target=label,
        requests_per_second=round(result["requests"] / (result["duration_us"] / 1e6), 1),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=errors,
        cache_statuses={k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)},
        load_before=round(load_before, 2),
    )
    print(
        f"  {label:<14} {measured.requests_per_second:9,.0f} req/s  p50 {measured.p50_ms:6.2f} ms  "
        f"p99 {measured.p99_ms:6.2f} ms  errors {errors}  load {load_before:.2f}"
        + (f"  cache {measured.cache_statuses}" if proxy else ""),
        flush=True,
    )
    return measured


def revocation(
    proxy: Nginx, server: common.Server, token: str, number: str, credentials: tuple[str, str], max_age: int
) -> Revocation:
    with httpx.Client(base_url=proxy.base_url, timeout=10) as scanner, httpx.Client(timeout=10) as direct:
        access = access_token_for(scanner, *credentials)
        first = scanner.get(f"/v1/verify/{token}")
        cached_at = time.monotonic()
        if first.headers.get("X-Cache-Status") != "MISS" or first.json()["result"] != "valid":
            raise RuntimeError(f"expected a fresh MISS for a valid code: {first.headers} {first.text[:200]}")
        revoked = scanner.post(
            f"/v1/certificates/{number}/revoke",
            json={"reason": "proxy benchmark: revoked to time the cache", "reason_code": "fraud"},
            headers={"Authorization": f"Bearer {access}"},
        )
        revoked_at = time.monotonic()
        if revoked.status_code != 200:
            raise RuntimeError(f"revoke answered {revoked.status_code}: {revoked.text[:300]}")
        direct_result = direct.get(f"{server.base_url}/v1/verify/{token}").json()["result"]
        polls = 0
        deadline = revoked_at + max_age + 30
        while time.monotonic() < deadline:
            polls += 1
            if scanner.get(f"/v1/verify/{token}").json()["result"] == "revoked":
                break
            time.sleep(POLL_SECONDS)
        else:
            raise RuntimeError(f"still not revoked behind the proxy {max_age + 30} s after the revocation")
        seen_at = time.monotonic()
    return Revocation(
        max_age_seconds=max_age,
        cached_to_revoked_s=round(revoked_at - cached_at, 3),
        revoked_to_seen_s=round(seen_at - revoked_at, 3),
        polls=polls,
        direct_result_after_revoke=direct_result,
    )


def access_token_for(client: httpx.Client, client_id: str, client_secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    response = client.post("/oauth/token", data=form)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


# Long: a benchmark's script: arguments, servers, both storms, the revocation and the JSON, read top to bottom.
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="certificates in the database")
    parser.add_argument("--hot", type=int, default=5, help="how many codes the storm scans")
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--prefix", default="bench_proxy", help="database name prefix (<prefix>_<count>)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=float, default=20, help="seconds measured per storm")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before each storm")
    parser.add_argument("--max-age", type=int, default=30, help="REGISTRY_VERIFY_MAX_AGE_SECONDS of the service")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker processes")
    parser.add_argument("--max-load", type=float, default=0.5, help="wait for the 1-min load average below this")
    parser.add_argument("--load-wait", type=float, default=120, help="longest wait for a quiet machine, seconds")
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    args = parser.parse_args()
    for tool, package in (("wrk", "wrk"), ("nginx", "nginx-light")):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install -y {package})")
    data_dir: Path = args.data_dir
    url = common.database_url(f"{args.prefix}_{args.count}", args.server)
    name = common.database_name(url)

    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    print(f"code: {common.code_state()}")
    verify.ensure_loaded(url, args.count, data_dir, reload=False)
    key = common.master_key_for(data_dir, name)
    candidates = random.Random().sample(load.tokens_path(data_dir, name).read_text().split(), args.hot + 20)  # noqa: S311
    active = asyncio.run(active_certificates(url, candidates))
    usable = [t for t in candidates if t in active]
    if len(usable) < args.hot + 1:
        raise SystemExit("not enough active certificates left: run load.py again (--reload)")
    hot, victim = usable[: args.hot], usable[args.hot]
    hot_file = data_dir / f"{name}.hot-tokens"
    hot_file.write_text("\n".join(hot) + "\n", encoding="ascii")
    script = data_dir / f"{name}.hot.lua"
    script.write_text(verify.LUA.replace("@TOKENS@", str(hot_file)), encoding="utf-8")
    credentials = asyncio.run(issuer_credentials(url, key))
    print(
        f"{args.hot} hot codes of {args.count:,} certificates; wrk {args.connections} connections, {args.threads} "
        f"threads, {args.warmup:.0f} s warm-up + {args.duration:.0f} s; service: 2 uvicorn workers, max-age "
        f"{args.max_age} s; nginx: {args.nginx_workers} worker(s)"
    )

    os.environ["REGISTRY_VERIFY_MAX_AGE_SECONDS"] = str(args.max_age)  # start_registry passes the environment on
    server = common.start_registry("proxy-origin", url, key, data_dir)
    nginx_root = data_dir / "nginx"
    shutil.rmtree(nginx_root, ignore_errors=True)  # no cache left from an earlier run
    proxy = Nginx(
        shutil.which("nginx") or "nginx",
        nginx_root,
        port=common.free_port(),
        upstream_port=server.port,
        workers=args.nginx_workers,
    )
    try:
        proxy.start()
        verify.check_answers(server, "verify", hot)
        alone = storm("service alone", server.base_url, script, args, None)
        behind = storm("through nginx", proxy.base_url, script, args, proxy)
        revoked = revocation(proxy, server, victim, active[victim], credentials, args.max_age)
    finally:
        proxy.stop()
        server.stop()

    ratio = behind.requests_per_second / alone.requests_per_second
    print()
    print(
        f"scan storm: {alone.requests_per_second:,.0f} req/s service alone, {behind.requests_per_second:,.0f} req/s "
        f"through nginx: {ratio:.1f}x"
    )
    reached = sum(behind.cache_statuses.get(s, 0) for s in ("MISS", "EXPIRED", "REVALIDATED", "BYPASS"))
    print(f"requests that reached the service during the storm through nginx: {reached:,}")
    within = revoked.revoked_to_seen_s <= revoked.max_age_seconds
    print(
        f"revocation seen behind nginx {revoked.revoked_to_seen_s:.2f} s after it was made (cached "
        f"{revoked.cached_to_revoked_s:.2f} s before it; {revoked.polls} polls; the service alone said "
        f"{revoked.direct_result_after_revoke!r} at once): within max-age {revoked.max_age_seconds} s: "
        f"{'met' if within else 'MISSED'}"
    )
    out = data_dir / "proxy-results.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": common.machine(),
                "args": {k: str(v) for k, v in vars(args).items()},
                "alone": asdict(alone),
                "through_nginx": asdict(behind),
                "ratio": round(ratio, 2),
                "revocation": asdict(revoked),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
