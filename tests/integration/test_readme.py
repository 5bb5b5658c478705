"""The README is followed as a stranger would: its walkthrough, run block by block against a live `registry serve`.

Every fenced block marked ``sh walkthrough`` is run, in order, as one bash script (``set -euo pipefail``: a failed
``curl -f`` or an unset variable stops it), in a fresh directory where `registry serve` runs on its embedded default
(SQLite and a development key in ./.registry/, no REGISTRY_* setting at all) — the way the README tells people to
start it. The only change made to the README's text is the port.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from tests.checks import require_tool
from tests.integration.server_support import Server

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BASE_LINE = "R=http://127.0.0.1:8000"


def walkthrough_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh walkthrough\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_same_tests() -> None:
    text = README.read_text(encoding="utf-8")
    first = text.index("python3 -m pip install -e . -c constraints.txt && registry serve")
    second = text.index("python3 -m pip install -e '.[test]' -c constraints.txt && python3 -m pytest")
    assert first < second < text.index("## Walkthrough")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m pip install -q -e '.[test]' -c constraints.txt\npython3 -m pytest\n" in ci
    # The packages the full suite needs are named where a newcomer reads, with the command that installs them.
    assert "apt-get install -y chromium poppler-utils fonts-noto-cjk jq curl redis-server" in text


def test_the_walkthrough_covers_the_whole_story() -> None:
    script = "\n".join(walkthrough_blocks(README.read_text(encoding="utf-8")))
    for step in (
        "registry clients create --role admin",
        '"$R/v1/issuers"',
        '"$R/v1/clients"',
        '"$R/v1/certificates"',
        '"$R/v1/verify/$QR_TOKEN"',
        '"$R/v1/verify"',
        '"$R/v/$QR_TOKEN"',
        '"$R/v1/holder/sessions"',
        ".pdf",
        "/revoke",
        "registry verify-credential credential.jwt --offline",
    ):
        assert step in script, step


async def test_the_readme_walkthrough_runs_against_a_live_server(tmp_path: Path) -> None:
    for command in ("curl", "jq"):
        require_tool(command, command)
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 7
    script = "set -euo pipefail\n" + "\n".join(blocks)
    assert script.count(BASE_LINE) == 1, "the walkthrough sets R once, to the address `registry serve` serves"
    workdir = tmp_path / "newcomer"
    workdir.mkdir()
    server = Server({"REGISTRY_RATE_LIMITS_ENABLED": "true"}, tmp_path / "server.log", cwd=workdir)
    del server.env["REGISTRY_BATCH_WORKERS"]  # the default, signing workers and all, as a newcomer gets it
    script = script.replace(BASE_LINE, f"R={server.base_url}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the installed `registry`
    await server.start()
    try:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            cwd=workdir,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), timeout=180)
    finally:
        await server.stop()
    out, err = out_bytes.decode(), err_bytes.decode()
    assert process.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert '"name_zh": "具身智能"' in out  # the catalogue search, URL-encoded
    assert '"code": "BJ-EAI-SENIOR"' in out
    assert re.search(r'"claim_code": "[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}"', out)
    assert out.count('"result": "valid"') == 1
    assert '\n"valid"\n' in out
    assert "<title>人才证书查验 · 有效</title>" in out
    assert "%PDF-" in out
    assert (workdir / "certificate.pdf").read_bytes().startswith(b"%PDF-")
    assert '\n"revoked"\n' in out
    assert '"result": "revoked"' in out
    assert '"status_reason": "issued_in_error"' in out
    assert re.search(r"^signature\s+PASS", out, flags=re.M)
    assert re.search(r"^status\s+FAIL\s+message status 0x2 at index \d+: the certificate is revoked", out, flags=re.M)
    assert "RESULT     NOT VALID\nexit 1" in out
    assert "11010519491231002X" not in (tmp_path / "server.log").read_text(errors="replace")
