"""Three regional registry nodes as real `registry serve` processes, for the multi-node federation test; and one
in-process Tianjin node whose Beijing peer is a fake that answers as the test tells it (the trust tests).

Each node has its own database and master key and names the other two in REGISTRY_PEERS; it is set up as its bureau
would: an admin client from the command line, an evaluation body of the node's region and its issuer client. The
answer cache, the peer timeout and the breaker's reset time are short, so the test can wait them out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from api.app import create_app, dispose
from registry.certificates import numbering
from registry.config import Region, Settings
from registry.db import utcnow
from registry.federation import protocol
from registry.federation.peers import Federation
from tests.factories import bearer, certificate_body, issuer_body, resident_id, token_for
from tests.integration.cli_support import run_registry
from tests.integration.server_support import Server, free_port

CACHE_SECONDS = 2
TIMEOUT_SECONDS = 1.0
RESET_SECONDS = 2.0
SLACK_SECONDS = 1.5  # scheduling on a shared 2-core machine
PEER_BOUND_SECONDS = 2 * TIMEOUT_SECONDS + SLACK_SECONDS  # two attempts of one timeout each, at most
REGIONS = ("BJ", "TJ", "HE")
ISSUERS = {"BJ": "BJ-AI-COMMITTEE", "TJ": "TJ-ENG-COMMITTEE", "HE": "HE-ENG-COMMITTEE"}
ID_AREAS = {"BJ": "110105", "TJ": "120101", "HE": "130102"}  # 朝阳区, 和平区, 长安区


@dataclass
class Certificate:
    number: str
    holder_name: str
    id_number: str

    @property
    def question(self) -> dict[str, str]:
        return {"number": self.number, "holder_name": self.holder_name}


@dataclass
class Node:
    region: str
    env: dict[str, str]
    server: Server
    http: httpx.AsyncClient
    admin: str = ""
    issuer: str = ""

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def settings(self) -> Settings:
        """This node's settings, for an in-process app on its database (to sign as this node does)."""
        return Settings(
            env="test",
            region=self.region,
            database_url=self.env["REGISTRY_DATABASE_URL"],
            master_key=self.env["REGISTRY_MASTER_KEY"],
            public_base_url=self.base_url,
            data_dir=Path(self.env["REGISTRY_DATA_DIR"]),
            peers=json.loads(self.env["REGISTRY_PEERS"]),
        )


@dataclass
class Network:
    nodes: dict[str, Node]
    certificates: dict[str, Certificate] = field(default_factory=dict)


def node_env(region: str, urls: dict[str, str], database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "REGISTRY_ENV": "test",
        "REGISTRY_REGION": region,
        "REGISTRY_PEERS": json.dumps({other: url for other, url in urls.items() if other != region}),
        "REGISTRY_PUBLIC_BASE_URL": urls[region],
        "REGISTRY_MASTER_KEY": secrets.token_hex(32),  # each node its own: trust comes from the JWKS only
        "REGISTRY_DATA_DIR": str(data_dir),
        "REGISTRY_DATABASE_URL": database_url,
        "REGISTRY_PEER_CACHE_SECONDS": str(CACHE_SECONDS),
        "REGISTRY_PEER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "REGISTRY_PEER_RESET_SECONDS": str(RESET_SECONDS),
        "REGISTRY_LOG_LEVEL": "WARNING",
        "REGISTRY_RATE_LIMITS_ENABLED": "false",  # one test client asks about a few numbers many times
    }


async def set_up(node: Node) -> None:
    """The bureau of the node's region: an admin client from the CLI, an evaluation body and its issuer client."""
    code, out, err = await run_registry("clients", "create", "--role", "admin", "--name", "bureau", env=node.env)
    assert code == 0, err
    created = json.loads(out)
    node.admin = await token_for(node.http, created["client_id"], created["client_secret"])
    body = issuer_body(ISSUERS[node.region], region=node.region, catalogue_codes=("ENG-AI", "ENG-EAI"))
    response = await node.http.post("/v1/issuers", json=body, headers=bearer(node.admin))
    assert response.status_code == 201, response.text
    client = {"role": "issuer", "name": "committee", "issuer_code": ISSUERS[node.region]}
    response = await node.http.post("/v1/clients", json=client, headers=bearer(node.admin))
    assert response.status_code == 201, response.text
    node.issuer = await token_for(node.http, response.json()["client_id"], response.json()["client_secret"])


async def issue(node: Node, catalogue_code: str, holder_name: str) -> Certificate:
    id_number = resident_id(region=ID_AREAS[node.region])
    body = certificate_body(
        catalogue_code=catalogue_code,
        holder={"name": holder_name, "id_type": "resident_id", "id_number": id_number},
        evaluation_batch=f"2026-{node.region}-ENG-01",
    )
    response = await node.http.post("/v1/certificates", json=body, headers=bearer(node.issuer))
    assert response.status_code == 201, response.text
    number: str = response.json()["number"]
    assert number[:2] == node.region, f"a certificate issued on the {node.region} node is numbered {number}"
    return Certificate(number=number, holder_name=holder_name, id_number=id_number)


@asynccontextmanager
async def three_nodes(root: Path, beijing_database_url: str) -> AsyncIterator[Network]:
    """BJ (on ``beijing_database_url``), TJ and HE (SQLite files in ``root``) started, set up, with certificates."""
    ports = {region: free_port() for region in REGIONS}
    urls = {region: f"http://127.0.0.1:{port}" for region, port in ports.items()}
    databases = {region: f"sqlite+aiosqlite:///{root}/{region}.db" for region in REGIONS}
    databases["BJ"] = beijing_database_url
    nodes: dict[str, Node] = {}
    for region in REGIONS:
        env = node_env(region, urls, databases[region], root / f"{region}-data")
        server = Server(env, root / f"{region}.log", port=ports[region])
        nodes[region] = Node(region, env, server, httpx.AsyncClient(base_url=urls[region], timeout=30))
    try:
        started = time.monotonic()
        await asyncio.gather(*(node.server.start() for node in nodes.values()))
        await asyncio.gather(*(set_up(node) for node in nodes.values()))
        network = Network(nodes)
        bj, tj, he = nodes["BJ"], nodes["TJ"], nodes["HE"]
        for key, node, code, name in [
            ("bj_eai", bj, "ENG-EAI", "张三"),
            ("bj_ai", bj, "ENG-AI", "李四"),
            ("bj_revoke", bj, "ENG-AI", "王五"),
            ("bj_down", bj, "ENG-AI", "赵六"),
            ("bj_restart", bj, "ENG-EAI", "钱九"),
            ("tj_ai", tj, "ENG-AI", "孙七"),
            ("he_ai", he, "ENG-AI", "周八"),
        ]:
            network.certificates[key] = await issue(node, code, name)
        print(f"\nthree nodes started and set up in {time.monotonic() - started:.1f} s")
        yield network
    finally:
        for node in nodes.values():
            await node.server.stop()
            await node.http.aclose()


async def key_set(node: Node) -> jwt.PyJWKSet:
    response = await node.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return jwt.PyJWKSet.from_dict(response.json())


def checked(token: str, keys: jwt.PyJWKSet, *, typ: str, audience: str) -> dict[str, Any]:
    """The claims of a compact JWS of type ``typ``, verified with PyJWT against the published key set."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == typ
    claims: dict[str, Any] = jwt.decode(token, keys[header["kid"]], algorithms=["EdDSA"], audience=audience)
    return claims


def problem(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("instance", None)
    return body


async def partner_client(node: Node) -> tuple[str, str]:
    body = {"role": "partner", "name": "河北省人才交流中心", "region": node.region}
    response = await node.http.post("/v1/clients", json=body, headers=bearer(node.admin))
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id, await token_for(node.http, client_id, response.json()["client_secret"])


async def audit_records(node: Node, **params: Any) -> list[dict[str, Any]]:
    response = await node.http.get("/v1/audit", params={"limit": 500, **params}, headers=bearer(node.admin))
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    records: list[dict[str, Any]] = response.json()["data"]
    return records


async def service_token(node: Node, *, to: str, claims: dict[str, Any] | None = None) -> str:
    """A service token signed with ``node``'s own registry key, as its federation client makes them (``claims``
    overriding what it would say)."""
    app = create_app(node.settings())
    try:
        sign = await app.state.federation.sign()
    finally:
        await dispose(app)
    token = protocol.service_token(sign, own_region=node.region, peer_region=to)
    if claims is None:
        return token
    genuine = jwt.decode(token, options={"verify_signature": False})
    altered: str = sign(protocol.SERVICE_TOKEN_TYPE, {**genuine, **claims})
    return altered


async def answered_for_peers(node: Node) -> float:
    """How many questions ``node`` has answered for peer nodes (its verification counter, channel "peer")."""
    text = (await node.http.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith("registry_verifications_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if 'channel="peer"' in line)


async def timed_verify(node: Node, question: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    response = await node.http.post("/v1/verify", json=question)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return time.monotonic() - started, answer


# --- one in-process node and a fake peer --------------------------------------------------------------------------

PEER_URL = "http://bj-node.test"
NODE_URL = "https://tj-node.test"
HOLDER = "张三"
HOLDER_ID_MASKED = "11**************34"  # as registry.holders.identity masks a resident id
Answer = Callable[[dict[str, Any]], Any]  # the answer a fake peer signs, given the question it was asked


def peer_jwk(key: Ed25519PrivateKey, kid: str, key_use: str) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "EdDSA", "use": "sig", "key_use": key_use, "status": "active"}


def fake_certificate(number: str) -> dict[str, Any]:
    return {
        "number": number,
        "number_display": numbering.group_canonical(number),
        "holder_name": HOLDER,
        "holder_id_masked": HOLDER_ID_MASKED,
        "cert_type": "title",
        "catalogue_code": "ENG-AI",
        "series_zh": "工程技术",
        "name_zh": "人工智能",
        "name_en": "Artificial intelligence",
        "level": "senior",
        "level_name_zh": "正高级",
        "level_name_en": "Senior",
        "issuer_code": "BJ-AI-COMMITTEE",
        "issuer_name": "北京市工程技术系列人工智能专业高级职称评审委员会",
        "awarded_on": "2026-06-30",
        "valid_until": None,
    }


def fake_verification(number: str) -> dict[str, Any]:
    """What an honest Beijing node says of ``number``: revoked, checked just now."""
    return {
        "result": "revoked",
        "reason": "fraud",
        "certificate": fake_certificate(number),
        "signature_valid": True,
        "checked_at": utcnow().isoformat(),
        "answered_by": "BJ",
    }


def fake_recognition(number: str, to_region: str) -> dict[str, Any]:
    """What an honest Beijing node judges of ``number`` for ``to_region``: revoked, so not recognised."""
    verification = fake_verification(number)
    return {
        "number": number,
        "result": "revoked",
        "reason": "fraud",
        "to_region": to_region,
        "decision": "not_recognised",
        "decision_reason": "revoked",
        "certificate": verification["certificate"],
        "answered_by": "BJ",
        "checked_at": verification["checked_at"],
    }


async def _trickle() -> AsyncIterator[bytes]:
    """A body that starts, then comes a byte at a time and never ends: every read is quick, the whole is never."""
    yield b"{"
    while True:
        await asyncio.sleep(0.2)
        yield b" "


class FakeBeijing:
    """The Beijing node as the Tianjin node sees it: a JWKS, and signed answers to verification and recognition
    questions — by default honest ones (revoked); ``verify_answer``, ``recognition_answer``, ``published`` (the key
    set), ``mode`` (how the statement is signed) and ``trickle`` (paths answered a byte at a time) make it lie."""

    def __init__(self) -> None:
        self.node_key = Ed25519PrivateKey.generate()
        self.body_key = Ed25519PrivateKey.generate()  # an evaluation body's certificate key, published too
        self.stranger = Ed25519PrivateKey.generate()  # never published
        self.number = numbering.new_number(region="BJ", cert_type="title", year=2026)
        self.mode = "honest"
        self.tokens: list[str] = []
        self.asked = asyncio.Event()
        self.verify_answer: Answer = lambda question: {"status": 200, "body": fake_verification(question["number"])}
        self.recognition_answer: Answer = lambda question: [
            {"index": index, "status": 200, "answer": fake_recognition(item["number"], question["to_region"])}
            for index, item in enumerate(question["items"])
        ]
        self.published: list[Any] | None = None
        self.trickle: set[str] = set()
        self.key_set_fetches = 0

    def key_set(self) -> dict[str, Any]:
        honest = [peer_jwk(self.node_key, "bj-node", "access_token"), peer_jwk(self.body_key, "bj-body", "certificate")]
        return {"keys": honest if self.published is None else self.published}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/jwks.json":
            self.key_set_fetches += 1
        if path in self.trickle:
            return httpx.Response(200, headers={"content-type": "application/json"}, content=_trickle())
        if path == "/.well-known/jwks.json":
            return httpx.Response(200, json=self.key_set())
        if path in ("/v1/federation/verify", "/v1/federation/recognition"):
            self.tokens.append(request.headers["authorization"].removeprefix("Bearer "))
            if self.mode == "hanging":  # asked, and never answering: the asker gives up first
                self.asked.set()
                await asyncio.Event().wait()
            if self.mode in ("[]", "null", '"statement"', "42"):
                return httpx.Response(200, content=self.mode)
            question = json.loads(request.content)
            answer = self.verify_answer(question) if path.endswith("/verify") else self.recognition_answer(question)
            return httpx.Response(200, json={"statement": self.statement(question["nonce"], answer)})
        return httpx.Response(404)

    def sign(self, claims: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": protocol.PEER_ANSWER_TYPE})

    def statement(self, nonce: str, answer: Any) -> str:
        claims: dict[str, Any] = {"iss": PEER_URL, "region": "BJ", "iat": int(time.time()), "aud": "TJ", "nonce": nonce}
        if self.mode == "other_question":
            claims["nonce"] = "an-answer-to-another-question"
        if self.mode == "stranger_key":
            return self.sign({**claims, "answer": answer}, self.stranger, "bj-node-2")
        if self.mode == "stranger_under_published_kid":
            return self.sign({**claims, "answer": answer}, self.stranger, "bj-node")
        if self.mode == "evaluation_body_key":
            return self.sign({**claims, "answer": answer}, self.body_key, "bj-body")
        token = self.sign({**claims, "answer": answer}, self.node_key, "bj-node")
        if self.mode == "altered":  # someone on the way turns "revoked" into "valid", keeping the signature
            header, _, signature = token.split(".")
            altered = {**claims, "answer": {**answer, "body": {**answer["body"], "result": "valid", "reason": None}}}
            payload = base64.urlsafe_b64encode(json.dumps(altered).encode()).rstrip(b"=").decode()
            return f"{header}.{payload}.{signature}"
        return token


@dataclass
class Tianjin:
    app: FastAPI
    http: httpx.AsyncClient
    peer: FakeBeijing


@asynccontextmanager
async def tianjin_with_fake_beijing(settings: Settings, **changes: Any) -> AsyncIterator[Tianjin]:
    """The Tianjin node in-process, with the fake Beijing node as its only peer (no answer cache, unless ``changes``
    say otherwise)."""
    update = {
        "region": Region.TJ,
        "peers": {Region.BJ: PEER_URL},
        "peer_cache_seconds": 0,
        "peer_timeout_seconds": 1.0,
        "public_base_url": NODE_URL,
        **changes,
    }
    app = create_app(settings.model_copy(update=update))
    peer = FakeBeijing()
    await app.state.federation.close()
    transport = httpx.MockTransport(peer.handle)
    app.state.federation = Federation(app.state.context, app.state.sessions, transport=transport)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=NODE_URL) as http:
            yield Tianjin(app, http, peer)
    finally:
        await dispose(app)


def beijing_service_token(key: Ed25519PrivateKey, kid: str = "bj-node", **claims: Any) -> str:
    """A service token as the Beijing node would send Tianjin (protocol.SERVICE_TOKEN_TYPE), signed with ``key`` under
    ``kid``; ``claims`` replace the standard ones."""
    now = int(time.time())
    standard = {
        "iss": "http://bj-node.test",
        "sub": "node:BJ",
        "region": "BJ",
        "aud": protocol.node_audience("TJ"),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": kid, "typ": protocol.SERVICE_TOKEN_TYPE}
    return jwt.encode({**standard, **claims}, key, algorithm="EdDSA", headers=headers)
