"""The installed package, as the Dockerfile's `pip install .` makes it, holds every file the registry reads at run time.

An editable install reads the files from the working tree, so the rest of the suite cannot see a file that
[tool.setuptools.package-data] leaves out: the holder's pages answered 500 (TemplateNotFound) from an image whose
wheel lacked api/templates/holder/. Here a wheel is built from a copy of the working tree, compared with the files
git knows, and an app is run from it with the working tree out of reach.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from registry.config import Settings
from tests.integration.server_support import Server

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("registry", "api", "cli", "migrations")  # [tool.setuptools.packages.find] include
# Files under the packages that the installed registry does without, each with its reason. Empty: even the fonts'
# README travels with the fonts, whose provenance and licences it states.
NOT_SHIPPED: frozenset[str] = frozenset()


def _known_files() -> list[str]:
    """What git tracks, plus new files it does not ignore (work not yet committed ships too)."""
    listed = subprocess.run(  # noqa: S603 - our own fixed command line
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *PACKAGES],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (ROOT / name).is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built the way `pip install .` builds one, from a copy of the tree (no build/ or egg-info left in it,
    and none of the tree's stale ones read). In an isolated build environment, as in the image: pip fetches
    [build-system] requires (setuptools) from the package index, so this needs the index (or a local mirror)."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    for name in ["pyproject.toml", "README.md", *_known_files()]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(  # noqa: S603 - our own fixed command line
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, f"the wheel could not be built:\n{built.stdout}\n{built.stderr}"
    (found,) = (base / "dist").glob("talent_registry-*.whl")
    return found


def test_the_wheel_holds_every_file_of_the_packages(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in _known_files() if name not in shipped and name not in NOT_SHIPPED]
    assert missing == [], f"[tool.setuptools.package-data] in pyproject.toml leaves out: {missing}"


HOLDER_PAGE = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path

    import httpx

    import api
    from api.app import create_app, dispose
    from registry.config import Settings
    from registry.db import create_engine
    from registry.migrate import upgrade

    assert Path(api.__file__).is_relative_to(Path(sys.argv[1])), api.__file__

    async def main() -> None:
        url = "sqlite+aiosqlite:///" + sys.argv[2]
        engine = create_engine(url)
        await upgrade(engine)  # the migrations and the seed data they read, from the wheel
        await engine.dispose()
        settings = Settings(
            env="test", database_url=url, master_key="5f" * 32, data_dir=sys.argv[3], rate_limits_enabled=False
        )
        app = create_app(settings)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
                for path in ("/holder", "/holder?lang=zh", "/v"):
                    answer = await http.get(path)
                    print(path, answer.status_code)
        finally:
            await dispose(app)

    asyncio.run(main())
    """
)


def test_an_app_run_from_the_wheel_serves_the_holder_pages(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # None of the caller's REGISTRY_ settings: the script sets its own.
    env = {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
    env |= {"PYTHONPATH": str(unpacked), "REGISTRY_BATCH_WORKERS": "0"}
    ran = subprocess.run(  # noqa: S603 - our own fixed command line
        [sys.executable, "-c", HOLDER_PAGE, str(unpacked), str(tmp_path / "registry.db"), str(tmp_path / "data")],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    answers = ran.stdout.splitlines()
    assert answers == ["/holder 200", "/holder?lang=zh 200", "/v 200"], ran.stdout + ran.stderr[-3000:]


# The Dockerfile, checked without a Docker daemon: the image installs the tested versions, and its health check asks,
# with what a slim image has (no curl), a route `registry serve` answers.


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each instruction, continuation lines joined and comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def test_the_image_installs_the_versions_constraints_txt_pins() -> None:
    instructions = _dockerfile()
    (install,) = [n for n, (kind, text) in enumerate(instructions) if kind == "RUN" and "pip install" in text]
    command = instructions[install][1].split("&&")[0].split()
    assert command[:2] == ["pip", "install"], command
    assert "-c constraints.txt" in " ".join(command) or "--constraint constraints.txt" in " ".join(command), command
    copied = [text.split() for kind, text in instructions[:install] if kind == "COPY"]
    assert any("constraints.txt" in parts[:-1] for parts in copied), "constraints.txt is not copied before the install"


def test_the_image_says_how_to_trust_the_proxy() -> None:
    assert "FORWARDED_ALLOW_IPS" in (ROOT / "Dockerfile").read_text()


def _health_check() -> tuple[list[str], int]:
    """The health check's command, and the port the entrypoint serves on."""
    instructions = _dockerfile()
    (check,) = [text for kind, text in instructions if kind == "HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + len("CMD") :])
    (entrypoint,) = [json.loads(text) for kind, text in instructions if kind == "ENTRYPOINT"]
    return command, int(entrypoint[entrypoint.index("--port") + 1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_image_health_check_passes_while_the_registry_serves(settings: Settings, tmp_path: Path) -> None:
    command, port = _health_check()
    assert command[0] in ("python", "python3"), f"the slim image has python, not {command[0]}"
    script = command[-1]
    assert f"127.0.0.1:{port}/" in script, f"the check does not ask the port the entrypoint serves on ({port})"
    server = Server.for_settings(settings, tmp_path / "server.log")
    here = [sys.executable, *command[1:-1], script.replace(f":{port}/", f":{server.port}/")]
    await server.start()
    try:
        assert await _exit_code(here) == 0
    finally:
        await server.stop()
    assert await _exit_code(here) != 0, "the check passes with no server"


async def _exit_code(command: list[str]) -> int:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), timeout=30)
