"""An outside attacker against the abuse limits: guessing tokens, holder names, client secrets and claim codes.

    python benchmarks/attack_limits.py                       # 100,000 random tokens, the rest 2,000 each
    python benchmarks/attack_limits.py --tokens 10000 --guesses 500 --no-redis

The real service (``registry serve --workers 2``, default limits) runs on loopback with a fresh SQLite database, and
REGISTRY_REDIS_URL pointing at ``--redis`` (so both workers share one count; ``--no-redis`` shows each worker
counting alone). One certificate is issued. Each attack then sends its guesses as fast as ``--concurrency``
connections allow, from its own loopback address (127.0.0.x: the limits count per client address, and the service
sees the connection's source), or spread over ``--spread`` addresses where a limit is meant to hold across them.

Printed per attack: requests, statuses, hits (a guess that found something: none expected), when the first 429 came,
the guesses answered (anything but 429) and the span they were answered in, and answered guesses per second over the
whole run (what an attacker sustains).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_common as common
import httpx

# Makes one guess through the given client; answers the response.
Guess = Callable[[httpx.AsyncClient, int], Any]


@dataclass
class Outcome:
    statuses: Counter[int] = field(default_factory=Counter)
    hits: int = 0
    first_refusal: float | None = None  # seconds since the start
    last_answer: float = 0.0  # seconds since the start of the last guess answered (anything but 429)
    seconds: float = 0.0


async def attack(
    base_url: str, addresses: list[str], guess: Guess, count: int, concurrency: int, found: int
) -> Outcome:
    """``count`` guesses over ``concurrency`` connections, spread round-robin over ``addresses``."""
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            timeout=30,
            transport=httpx.AsyncHTTPTransport(local_address=address),
            limits=httpx.Limits(max_connections=max(1, concurrency // len(addresses) + 1)),
        )
        for address in addresses
    ]
    outcome = Outcome()
    numbers = iter(range(count))
    started = time.perf_counter()

    async def worker() -> None:
        for n in numbers:
            response = await guess(clients[n % len(clients)], n)
            outcome.statuses[response.status_code] += 1
            outcome.hits += response.status_code == found
            if response.status_code != 429:
                outcome.last_answer = time.perf_counter() - started
            elif outcome.first_refusal is None:
                outcome.first_refusal = time.perf_counter() - started

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        outcome.seconds = time.perf_counter() - started
        for client in clients:
            await client.aclose()
    return outcome


def report(label: str, outcome: Outcome, count: int) -> None:
    """One line: what was sent, how it was answered, when the first 429 came, and the rate guesses were answered at
    (over the span in which any were, and over the whole run)."""
    answered = sum(v for k, v in outcome.statuses.items() if k != 429)
    statuses = " ".join(f"{k}:{v}" for k, v in sorted(outcome.statuses.items()))
    first = f"{outcome.first_refusal:5.2f} s" if outcome.first_refusal is not None else "never"
    span = max(outcome.last_answer, 1e-3)
    sent = f"{count:>7} in {outcome.seconds:6.1f} s"
    rates = f"answered {answered:>4} in {span:5.2f} s ({answered / span:6.1f}/s)"
    print(
        f"  {label:<30} {sent}  hits {outcome.hits}  {statuses:<20}  first 429 at {first}  {rates}"
        f"  run: {answered / outcome.seconds:5.2f}/s"
    )


def set_up(http: httpx.Client, env: dict[str, str]) -> dict[str, Any]:
    """An admin client (CLI), an evaluation body, its issuer clients and certificates: what an attacker targets. Each
    attack gets a certificate or client of its own, so no attack inherits another's spent count."""
    command = [common_registry(), "clients", "create", "--role", "admin", "--name", "attack"]
    created = subprocess.run(  # noqa: S603 - our own fixed command line
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    admin = {"Authorization": f"Bearer {token(http, json.loads(created.stdout))}"}
    http.post("/v1/issuers", json=common.issuer_body(7), headers=admin).raise_for_status()
    clients = []
    for _ in range(3):
        body = {"role": "issuer", "name": "attack", "issuer_code": common.ISSUER_CODE}
        response = http.post("/v1/clients", json=body, headers=admin)
        response.raise_for_status()
        clients.append(response.json())
    issuer = {"Authorization": f"Bearer {token(http, clients[0])}"}
    certificates = []
    for row in common.make_rows(3, offset=4242):
        issued = http.post("/v1/certificates", json=row, headers=issuer)
        issued.raise_for_status()
        certificates.append({**issued.json(), "holder_name": row["holder"]["name"], **row["holder"]})
    return {"certificates": certificates, "clients": clients[1:]}


def common_registry() -> str:
    import shutil

    return shutil.which("registry") or str(Path(sys.executable).with_name("registry"))


def token(http: httpx.Client, client: dict[str, str]) -> str:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials", **client})
    response.raise_for_status()
    access: str = response.json()["access_token"]
    return access


def attacks(target: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, list[str], Guess, int, int]]:
    """(label, source addresses, guess, how many, the status a successful guess would answer)."""
    lone = (f"127.0.0.{n}" for n in itertools.count(10))
    spread = [f"127.0.1.{n}" for n in range(1, args.spread + 1)]
    certificates, clients = target["certificates"], target["clients"]

    def random_token(http: httpx.AsyncClient, n: int) -> Any:
        return http.get(f"/v1/verify/{secrets.token_urlsafe(18)}")

    def page_token(http: httpx.AsyncClient, n: int) -> Any:
        return http.get(f"/v/{secrets.token_urlsafe(18)}")

    def names(certificate: dict[str, Any], *, page: bool = False) -> Guess:
        def guess(http: httpx.AsyncClient, n: int) -> Any:
            question = {"number": certificate["number"], "holder_name": f"{certificate['holder_name'][0]}{n}"}
            return http.post("/v", data=question) if page else http.post("/v1/verify", json=question)

        return guess

    def secrets_of(client: dict[str, str]) -> Guess:
        def guess(http: httpx.AsyncClient, n: int) -> Any:
            form = {"grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": f"x{n}"}
            return http.post("/oauth/token", data=form)

        return guess

    def claim_code(http: httpx.AsyncClient, n: int) -> Any:
        holder = certificates[0]
        body = {"id_type": "resident_id", "id_number": holder["id_number"], "claim_code": f"{n:04d}-AAAA-BBBB"}
        return http.post("/v1/holder/sessions", json=body)

    return [
        ("GET /v1/verify/{token}", [next(lone)], random_token, args.tokens, 200),
        ("GET /v/{token}", [next(lone)], page_token, args.guesses, 200),
        ("POST /v1/verify names", [next(lone)], names(certificates[0]), args.guesses, 200),
        ("POST /v names", [next(lone)], names(certificates[1], page=True), args.guesses, 200),
        (f"POST /v1/verify names x{len(spread)}", spread, names(certificates[2]), args.guesses, 200),
        ("POST /oauth/token secrets", [next(lone)], secrets_of(clients[0]), args.guesses, 200),
        (f"POST /oauth/token secrets x{len(spread)}", spread, secrets_of(clients[1]), args.guesses, 200),
        ("POST /v1/holder/sessions", [next(lone)], claim_code, args.guesses, 201),
    ]


async def still_served(base_url: str, target: dict[str, Any]) -> None:
    """After all that, the holder and an honest verifier, each from an address of their own, are still served."""
    async with httpx.AsyncClient(
        base_url=base_url, transport=httpx.AsyncHTTPTransport(local_address="127.0.2.1")
    ) as honest:
        holder = target["certificates"][0]
        scan = await honest.get(f"/v1/verify/{holder['qr_token']}")
        body = {"id_type": "resident_id", "id_number": holder["id_number"], "claim_code": holder["claim_code"]}
        signed_in = await honest.post("/v1/holder/sessions", json=body)
    print(f"\n  honest scan from a fresh address: {scan.status_code} {scan.json().get('result')}")
    print(f"  the holder signing in from a fresh address: {signed_in.status_code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100_000, help="random tokens to guess (GET /v1/verify)")
    parser.add_argument("--guesses", type=int, default=2_000, help="guesses in each of the other attacks")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--spread", type=int, default=50, help="addresses for the attacks spread over many")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="REGISTRY_REDIS_URL for the service")
    parser.add_argument("--no-redis", action="store_true", help="each worker counts alone")
    args = parser.parse_args()

    print(f"{common.machine()}\ncode: {common.code_state()}\n1-min load {common.loadavg():.2f}")
    with tempfile.TemporaryDirectory(prefix="attack-limits-") as scratch:
        folder = Path(scratch)
        port = common.free_port()
        env = {
            "REGISTRY_ENV": "test",
            "REGISTRY_MASTER_KEY": secrets.token_hex(32),
            "REGISTRY_DATA_DIR": str(folder / "data"),
            "REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/registry.db",
            "REGISTRY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "REGISTRY_LOG_LEVEL": "WARNING",
            "REGISTRY_DATABASE_READ_URL": "",
            "REGISTRY_REDIS_KEY_PREFIX": f"attack-{uuid.uuid4().hex[:12]}",
        }
        if not args.no_redis:
            env["REGISTRY_REDIS_URL"] = args.redis
        command = [common_registry(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        server = common.start_server("attack", command, env=env, port=port, log_dir=folder / "logs")
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                target = set_up(http, env)
            counting = "in process, per worker" if args.no_redis else f"in Redis ({args.redis})"
            print(f"service: 2 workers, default limits, counted {counting}; concurrency {args.concurrency}\n")
            for label, addresses, guess, count, found in attacks(target, args):
                outcome = asyncio.run(attack(server.base_url, addresses, guess, count, args.concurrency, found))
                report(label, outcome, count)
            asyncio.run(still_served(server.base_url, target))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
