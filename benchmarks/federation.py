"""Latency of a forwarded verification against a local one: POST /v1/verify, one request at a time.

    python benchmarks/federation.py                  # 200 of each, after 20 of each to warm up
    python benchmarks/federation.py --rounds 500

Two regional nodes run as real processes on loopback (``registry serve``, 2 uvicorn workers each, each with its own
SQLite database and master key, each naming the other in REGISTRY_PEERS); Tianjin's answer cache is off
(REGISTRY_PEER_CACHE_SECONDS=0), so every forwarded question really goes to Beijing. One certificate is issued on
each node. Each round asks, in turn, over kept-alive connections:

* **local**: the Tianjin node about its own Tianjin certificate;
* **forwarded**: the Tianjin node about the Beijing certificate (Tianjin -> Beijing with a service token, Beijing's
  signed answer checked against its JWKS);
* **at home**: the Beijing node about the same Beijing certificate (the work Beijing does inside a forwarded one).

Printed: the median (and p90) of each, and the ratios forwarded/local and forwarded/at home, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_common as common
import httpx

CODES = {"BJ": "BJ-BENCH-COMMITTEE", "TJ": "TJ-BENCH-COMMITTEE"}


def node_env(region: str, urls: dict[str, str], folder: Path) -> dict[str, str]:
    return {
        "REGISTRY_ENV": "test",
        "REGISTRY_REGION": region,
        "REGISTRY_PEERS": json.dumps({other: url for other, url in urls.items() if other != region}),
        "REGISTRY_PUBLIC_BASE_URL": urls[region],
        "REGISTRY_MASTER_KEY": secrets.token_hex(32),
        "REGISTRY_DATA_DIR": str(folder / f"{region}-data"),
        "REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/{region}.db",
        "REGISTRY_PEER_CACHE_SECONDS": "0",
        "REGISTRY_LOG_LEVEL": "WARNING",
        "REGISTRY_DATABASE_READ_URL": "",
        "REGISTRY_RATE_LIMITS_ENABLED": "false",  # every question asks about the same few numbers from one address
    }


def registry_command() -> str:
    return shutil.which("registry") or str(Path(sys.executable).with_name("registry"))


def token(http: httpx.Client, client: dict[str, str]) -> str:
    form = {"grant_type": "client_credentials", **client}
    response = http.post("/oauth/token", data=form)
    response.raise_for_status()
    access: str = response.json()["access_token"]
    return access


def set_up(region: str, http: httpx.Client, env: dict[str, str], seed: int) -> dict[str, str]:
    """An admin client (CLI), an evaluation body of the node's region, its issuer client, one certificate."""
    command = [registry_command(), "clients", "create", "--role", "admin", "--name", "bench"]
    created = subprocess.run(  # noqa: S603 - our own fixed command line
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    admin = {"Authorization": f"Bearer {token(http, json.loads(created.stdout))}"}
    body: dict[str, Any] = {**common.issuer_body(seed), "code": CODES[region], "region": region}
    http.post("/v1/issuers", json=body, headers=admin).raise_for_status()
    issuer = http.post(
        "/v1/clients", json={"role": "issuer", "name": "bench", "issuer_code": CODES[region]}, headers=admin
    )
    issuer.raise_for_status()
    headers = {"Authorization": f"Bearer {token(http, issuer.json())}"}
    row = common.make_rows(1, offset=seed)[0]
    issued = http.post("/v1/certificates", json=row, headers=headers)
    issued.raise_for_status()
    number: str = issued.json()["number"]
    assert number.startswith(region), number
    return {"number": number, "holder_name": row["holder"]["name"]}


def timed(http: httpx.Client, question: dict[str, str], answered_by: str) -> float:
    started = time.perf_counter()
    response = http.post("/v1/verify", json=question)
    elapsed = time.perf_counter() - started
    answer = response.json()
    if response.status_code != 200 or answer.get("result") != "valid" or answer.get("answered_by") != answered_by:
        raise RuntimeError(f"not a real answer: {response.status_code} {response.text[:300]}")
    return elapsed * 1000


def summary(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    print(f"  {label:<10} median {median:6.2f} ms   p90 {p90:6.2f} ms   min {min(samples):6.2f} ms   n={len(samples)}")
    return median


def measure(nodes: dict[str, common.Server], questions: dict[str, dict[str, str]], args: argparse.Namespace) -> None:
    with (
        httpx.Client(base_url=nodes["TJ"].base_url, timeout=10) as tj,
        httpx.Client(base_url=nodes["BJ"].base_url, timeout=10) as bj,
    ):
        kinds = {
            "local": lambda: timed(tj, questions["TJ"], "TJ"),
            "forwarded": lambda: timed(tj, questions["BJ"], "BJ"),
            "at home": lambda: timed(bj, questions["BJ"], "BJ"),
        }
        for _ in range(args.warmup):
            for ask in kinds.values():
                ask()
        load = common.wait_for_quiet(args.max_load, args.load_wait, label="federation")
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.rounds):  # interleaved: the three see the same machine
            for kind, ask in kinds.items():
                samples[kind].append(ask())
    print(f"\n{args.rounds} rounds, 1-min load {load:.2f} -> {common.loadavg():.2f}")
    medians = {kind: summary(kind, values) for kind, values in samples.items()}
    print(f"\nforwarded / local:   {medians['forwarded'] / medians['local']:.2f}  (medians)")
    print(f"forwarded / at home: {medians['forwarded'] / medians['at home']:.2f}")
    print(f"forwarding adds:     {medians['forwarded'] - medians['local']:.2f} ms per verification (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="verifications of each kind measured")
    parser.add_argument("--warmup", type=int, default=20, help="verifications of each kind before measuring")
    parser.add_argument("--max-load", type=float, default=0.5, help="wait for the 1-min load average below this")
    parser.add_argument("--load-wait", type=float, default=60, help="longest wait for a quiet machine, seconds")
    args = parser.parse_args()
    print(f"machine: {common.machine()}; python {sys.version.split()[0]}; 1-min load {common.loadavg():.2f}")
    print(f"code: {common.code_state()}")
    with tempfile.TemporaryDirectory(prefix="federation-bench-") as scratch:
        folder = Path(scratch)
        ports = {region: common.free_port() for region in CODES}
        urls = {region: f"http://127.0.0.1:{port}" for region, port in ports.items()}
        envs = {region: node_env(region, urls, folder) for region in CODES}
        nodes: dict[str, common.Server] = {}
        try:
            for region, port in ports.items():
                command = [registry_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
                nodes[region] = common.start_server(
                    region, command, env=envs[region], port=port, log_dir=folder / "logs", ready_path="/readyz"
                )
            questions = {}
            for seed, region in enumerate(CODES, start=1):
                with httpx.Client(base_url=urls[region], timeout=30) as http:
                    questions[region] = set_up(region, http, envs[region], seed)
            measure(nodes, questions, args)
        finally:
            for server in nodes.values():
                server.stop()


if __name__ == "__main__":
    main()
