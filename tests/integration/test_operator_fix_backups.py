"""README "Backups", followed as written on throw-away databases of the shared PostgreSQL server: a registry made with
``registry migrate``, a catalogue entry added through the API and a certificate issued, then the section's block —
``pg_dump --format=custom``, ``createdb``, ``pg_restore`` into the empty database, ``registry migrate`` and ``registry
audit verify`` on it. The restored registry must hold the entry the bureau added and verify the certificate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from api.app import create_app, dispose
from registry.config import Settings
from tests.conftest import MASTER_KEY, POSTGRES_URL, REQUIRE_POSTGRES, scratch_database
from tests.factories import admin_token, bearer, issued_certificate, ready_issuer
from tests.integration.cli_support import registry_env, run_registry

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ENTRY = {
    "code": "ENG-QC",
    "cert_type": "title",
    "series_zh": "工程技术",
    "series_en": "Engineering",
    "name_zh": "量子计算",
    "name_en": "Quantum computing",
    "levels": ["senior", "intermediate", "associate_senior"],
    "effective_from": "2026-12-01",
    "basis": "京人社发〔2026〕示例号",
}


def backup_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Backups\n") : text.index("## When the database fails")]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README 'Backups' has no sh block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_line(line: str, *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the documented command
        ["bash", "-euc", line],  # noqa: S607
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def the_machine(source_url: str, restored_name: str, tmp_path: Path) -> dict[str, str]:
    """The operator's shell: the libpq variables naming the server, the two databases, the registry's settings."""
    server = make_url(POSTGRES_URL)
    bin_dir = str(Path(sys.executable).parent)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "PG"))},
        **registry_env(source_url),
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "PGHOST": server.host or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "PGUSER": server.username or "postgres",
        **({"PGPASSWORD": server.password} if server.password else {}),
        "REGISTRY_DB": libpq_url(source_url),
        "RESTORED_DB": restored_name,
        "LC_ALL": "C.UTF-8",
        "HOME": str(tmp_path),
    }


async def _postgres_or_skip() -> None:
    try:
        connection = await asyncpg.connect(libpq_url(POSTGRES_URL), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: no server at {POSTGRES_URL} ({exc})")
    await connection.close()


def registry_on(url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        master_key=MASTER_KEY,
        public_base_url="https://registry.test",
        data_dir=tmp_path / "data",
        rate_limits_enabled=False,
    )


async def _fill(url: str, tmp_path: Path) -> dict[str, str]:
    """The bureau's work on the old database: an entry added through the API, a certificate issued."""
    app = create_app(registry_on(url, tmp_path))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            admin = await admin_token(app, http)
            created = await http.post("/v1/catalogue", json=ENTRY, headers=bearer(admin))
            assert created.status_code == 201, created.text
            certificate = await issued_certificate(http, await ready_issuer(app, http))
    finally:
        await dispose(app)
    return certificate


async def _look(url: str, tmp_path: Path, qr_token: str) -> tuple[list[str], str]:
    app = create_app(registry_on(url, tmp_path))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://registry.test") as http:
            found = (await http.get("/v1/catalogue", params={"q": "量子"})).json()
            verified = (await http.get(f"/v1/verify/{qr_token}")).json()
    finally:
        await dispose(app)
    return [entry["code"] for entry in found["data"]], verified["result"]


async def test_the_documented_backup_and_restore_keeps_an_entry_added_through_the_api(tmp_path: Path) -> None:
    await _postgres_or_skip()
    restored_name = f"tr_restored_{uuid.uuid4().hex[:12]}"
    async with scratch_database("tr_backup") as source_url:
        code, out, err = await run_registry("migrate", env=registry_env(source_url))  # the documented way to start
        assert code == 0, out + err
        certificate = await _fill(source_url, tmp_path)
        restored_url = make_url(source_url).set(database=restored_name).render_as_string(hide_password=False)
        env = the_machine(source_url, restored_name, tmp_path)
        try:
            for line in backup_block():
                ran = run_line(line, env=env, cwd=tmp_path)
                assert ran.returncode == 0, f"`{line}` failed:\n{ran.stdout}{ran.stderr}"
                if line.startswith("export REGISTRY_DATABASE_URL="):
                    env["REGISTRY_DATABASE_URL"] = restored_url  # the "…" of the line: this server's address
                if line.startswith("registry audit verify"):
                    source_counts = ran.stdout
            assert "audit chain intact" in ran.stdout, ran.stdout + ran.stderr
            assert ran.stdout == source_counts, (source_counts, ran.stdout)
            codes, result = await _look(restored_url, tmp_path, certificate["qr_token"])
        finally:
            admin = await asyncpg.connect(libpq_url(POSTGRES_URL))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)')
            finally:
                await admin.close()
    assert codes == ["ENG-QC"], codes
    assert result == "valid"


def test_the_readme_gives_no_data_only_restore() -> None:
    text = README.read_text(encoding="utf-8")
    assert "--disable-triggers" not in text
    assert "data-only `pg_dump` is restored" not in text
