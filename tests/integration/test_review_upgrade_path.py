"""The upgrade an operator makes: a database populated by an earlier release, with that release's own code (taken
from git, run in a subprocess), then ``registry migrate`` with this one. Everything the old release handed out must
still check out: certificates by token, by number and name and on their QR page, with the same status; credentials
downloaded before, offline; old client secrets; holders' claim codes; share links (their purposes masked under the
present rule by migrations 0020, 0022 and 0023); transparency proofs; status lists; ``registry audit verify``. The
migration is idempotent. An old release left running across the migration (the README says to stop it first) must
fail safe: what it writes afterwards verifies as 'unknown', never as what it is not."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app, dispose
from registry.config import Settings
from registry.db import create_engine
from tests.conftest import MASTER_KEY, REQUIRE_POSTGRES, Templates, scratch_database
from tests.integration.cli_support import registry_env, run_registry

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RELEASE_0015 = "de5cac4ea395e7e839521dcd482af6fb1b56296a"  # migrations/versions ended at 0015

# Run with the old release's code (PYTHONPATH=<its tree>), through its own API and its own test factories.
POPULATE = r"""
import asyncio, json, sys
from pathlib import Path
import httpx
from api.app import create_app, dispose
from registry.auth.scopes import Role
from registry.config import Settings
from tests.factories import bearer, create_client, create_issuer, issued_certificate, resident_id, token_for

NUMERALS = "〇一二三四五六七八九"


async def main(url: str, out: Path, step: str) -> None:
    settings = Settings(env="test", database_url=url, master_key="5f" * 32, public_base_url="https://registry.test",
                        data_dir=out / "data", rate_limits_enabled=False)
    app = create_app(settings)
    state = json.loads((out / "state.json").read_text()) if step == "after" else {"certs": {}}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as c:
            if step == "after":
                issuer = await token_for(c, *state["clients"]["issuer"])
                (out / "ready").write_text("")
                while not (out / "go").exists():
                    await asyncio.sleep(0.1)
                number = state["certs"]["valid"]["number"]
                body = {"reason": "after the migration", "reason_code": "fraud"}
                answer = await c.post(f"/v1/certificates/{number}/revoke", json=body, headers=bearer(issuer))
                (out / "after.json").write_text(json.dumps({"revoke": answer.status_code}))
                return
            admin_id, admin_secret = await create_client(app, role=Role.admin)
            admin = await token_for(c, admin_id, admin_secret)
            await create_issuer(c, admin)
            issuer_id, issuer_secret = await create_client(app, role=Role.issuer, issuer_code="BJ-AI-COMMITTEE")
            issuer = await token_for(c, issuer_id, issuer_secret)
            state["clients"] = {"admin": [admin_id, admin_secret], "issuer": [issuer_id, issuer_secret]}
            for name in ("valid", "revoked", "suspended", "corrected"):
                holder = {"name": "张三" + name, "id_type": "resident_id", "id_number": resident_id()}
                cert = await issued_certificate(c, issuer, holder=holder)
                state["certs"][name] = {"number": cert["number"], "qr_token": cert["qr_token"], "name": holder["name"],
                                        "claim_code": cert["claim_code"], "id_number": holder["id_number"]}
            certs = state["certs"]
            for name, action, body in (("revoked", "revoke", {"reason": "x", "reason_code": "fraud"}),
                                       ("suspended", "suspend", {"reason": "x"}),
                                       ("corrected", "correct", {"reason": "x", "level": "senior"})):
                answer = await c.post(f"/v1/certificates/{certs[name]['number']}/{action}", json=body,
                                      headers=bearer(issuer))
                assert answer.status_code in (200, 201), answer.text
            state["successor"] = answer.json()["number"]
            for name in ("valid", "revoked"):
                answer = await c.get(f"/v1/certificates/{certs[name]['number']}/credential", headers=bearer(issuer))
                assert answer.status_code == 200, answer.text
                (out / f"{name}.jwt").write_bytes(answer.content)
            valid = certs["valid"]
            signed_in = await c.post("/v1/holder/sessions", json={"id_type": "resident_id",
                                     "id_number": valid["id_number"], "claim_code": valid["claim_code"]})
            holder_headers = bearer(signed_in.json()["access_token"])
            spelled = "".join(NUMERALS[int(d)] if d.isdigit() else d for d in valid["id_number"])
            state["spelled"] = spelled
            body = {"number": valid["number"], "purpose": "other", "purpose_text": "背调，身份证 " + spelled}
            link = await c.post("/v1/holder/share-links", json=body, headers=holder_headers)
            assert link.status_code == 201, link.text
            state["link"] = httpx.URL(link.json()["url"]).path
            assert (await c.get(state["link"])).status_code == 200
            await app.state.visits.flush()
    finally:
        await dispose(app)
    (out / "state.json").write_text(json.dumps(state, ensure_ascii=False))


asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
"""


@pytest.fixture
async def empty_url(backend: str, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it: the old release migrates it itself."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    if templates.postgres_database is None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL unreachable: {templates.postgres_problem}")
        pytest.skip(f"PostgreSQL tests skipped: {templates.postgres_problem}")
    async with scratch_database("tr_upgrade") as url:
        yield url


async def _run(args: list[str], *, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _old_release(commit: str, tmp_path: Path) -> Path:
    """The release's tree from git (``git archive``), or the test is skipped where there is no repository."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git repository to take the earlier release from")
    archive, tree = tmp_path / "old.tar", tmp_path / "old"
    code, out = await _run(["git", "archive", "-o", str(archive), commit], env={}, cwd=ROOT)
    if code != 0:
        pytest.skip(f"release {commit} is not in this repository: {out}")
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    (tree / "populate.py").write_text(POPULATE, encoding="utf-8")
    return tree


def _old_env(tree: Path, url: str) -> dict[str, str]:
    return {**registry_env(url), "PYTHONPATH": str(tree), "LC_ALL": "C.UTF-8"}


async def _populated(tree: Path, url: str, out: Path) -> dict[str, Any]:
    """Migrated and populated by the old release's own code; what it handed out, as state.json says."""
    python = sys.executable
    code, said = await _run([python, "-m", "cli", "migrate"], env=_old_env(tree, url), cwd=tree)
    assert code == 0, said
    code, said = await _run([python, "populate.py", url, str(out), "before"], env=_old_env(tree, url), cwd=tree)
    assert code == 0, said
    state: dict[str, Any] = json.loads((out / "state.json").read_text(encoding="utf-8"))
    return state


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        master_key=MASTER_KEY,
        public_base_url="https://registry.test",
        data_dir=tmp_path / "data",
        rate_limits_enabled=False,
    )


async def _migrated_twice(url: str) -> None:
    env = {**registry_env(url), "LC_ALL": "C.UTF-8"}
    for _run_number in range(2):
        code, out, err = await run_registry("migrate", env=env)
        assert code == 0, out + err
        assert "database is at the latest revision" in err, err
    code, out, err = await run_registry("audit", "verify", env=env)
    assert code == 0, out + err


def _status_list_path(credential: Path) -> str:
    """The path of the status list a downloaded credential names."""
    payload = json.loads(base64.urlsafe_b64decode(credential.read_text().split(".")[1] + "=="))
    return httpx.URL(payload["credentialStatus"]["statusListCredential"]).path


async def _checks_out_as_before(http: httpx.AsyncClient, state: dict[str, Any], out: Path) -> None:
    expected = {"valid": "valid", "revoked": "revoked", "suspended": "suspended", "corrected": "superseded"}
    for name, cert in state["certs"].items():
        scanned = (await http.get(f"/v1/verify/{cert['qr_token']}")).json()
        assert scanned["result"] == expected[name], (name, scanned)
        typed = await http.post("/v1/verify", json={"number": cert["number"], "holder_name": cert["name"]})
        assert typed.status_code == 200, (name, typed.text)
        assert typed.json()["result"] == expected[name], (name, typed.text)
        assert (await http.get(f"/v/{cert['qr_token']}")).status_code == 200, name
        holder = {"id_type": "resident_id", "id_number": cert["id_number"], "claim_code": cert["claim_code"]}
        assert (await http.post("/v1/holder/sessions", json=holder)).status_code == 201, name
        assert (await http.get(f"/v1/transparency/proof/{cert['number']}")).status_code == 200, name
    for role, (client_id, secret) in state["clients"].items():
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        assert (await http.post("/oauth/token", data=form)).status_code == 200, role
    shared = await http.get(state["link"])
    assert shared.status_code == 200, shared.text
    assert state["spelled"] not in shared.text
    listed = await http.get(_status_list_path(out / "valid.jwt"))
    assert listed.status_code == 200, listed.text
    (out / "list.jwt").write_bytes(listed.content)
    (out / "jwks.json").write_bytes((await http.get("/.well-known/jwks.json")).content)


async def _offline(out: Path, name: str, url: str) -> int:
    files = ["--offline", "--jwks", str(out / "jwks.json"), "--status-list", str(out / "list.jwt")]
    code, _out, _err = await run_registry("verify-credential", str(out / f"{name}.jwt"), *files, env=registry_env(url))
    return code


async def test_a_database_of_the_0015_release_upgrades_and_all_it_handed_out_still_checks_out(
    empty_url: str, tmp_path: Path
) -> None:
    tree = await _old_release(RELEASE_0015, tmp_path)
    state = await _populated(tree, empty_url, tmp_path)

    await _migrated_twice(empty_url)

    app = create_app(_settings(empty_url, tmp_path))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            await _checks_out_as_before(http, state, tmp_path)
    finally:
        await dispose(app)
    assert await _offline(tmp_path, "valid", empty_url) == 0
    assert await _offline(tmp_path, "revoked", empty_url) == 1
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as connection:
            kept = (await connection.execute(text("SELECT purpose_text FROM share_links"))).scalars().all()
            visits = (await connection.execute(text("SELECT purpose FROM verification_visits"))).scalars().all()
    finally:
        await engine.dispose()
    spelled_or_digits = (state["spelled"], state["certs"]["valid"]["id_number"])
    assert kept
    assert not any(number in str(purpose) for purpose in [*kept, *visits] for number in spelled_or_digits)


async def test_an_old_release_left_running_across_the_migration_fails_safe(empty_url: str, tmp_path: Path) -> None:
    tree = await _old_release(RELEASE_0015, tmp_path)
    state = await _populated(tree, empty_url, tmp_path)
    still_running = asyncio.create_task(
        _run(
            [sys.executable, "populate.py", empty_url, str(tmp_path), "after"], env=_old_env(tree, empty_url), cwd=tree
        )
    )
    while not (tmp_path / "ready").exists():
        assert not still_running.done(), still_running.result()
        await asyncio.sleep(0.1)
    code, out, err = await run_registry("migrate", env={**registry_env(empty_url), "LC_ALL": "C.UTF-8"})
    assert code == 0, out + err
    (tmp_path / "go").write_text("")
    code, said = await still_running
    assert code == 0, said
    # The old release revoked a certificate with the seal of its day: the present one cannot vouch for that status.
    assert json.loads((tmp_path / "after.json").read_text())["revoke"] == 200
    code, out, err = await run_registry("audit", "verify", env=registry_env(empty_url))
    assert code == 1, out + err
    assert state["certs"]["valid"]["number"] in out + err

    app = create_app(_settings(empty_url, tmp_path))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            scanned = (await http.get(f"/v1/verify/{state['certs']['valid']['qr_token']}")).json()
            listed = await http.get(_status_list_path(tmp_path / "valid.jwt"))
    finally:
        await dispose(app)
    assert scanned["result"] == "unknown", scanned  # never 'valid' for a certificate its body revoked
    assert listed.status_code == 503, listed.text  # offline verifiers fail closed, never fed a stale list
