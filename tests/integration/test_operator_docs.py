"""What an operator installing the registry reads: README "Configuration" is the one list of the environment it reads,
and a section the README sends the reader to exists."""

from __future__ import annotations

import re
from pathlib import Path

from registry.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_setting_the_registry_reads_is_in_the_configuration_table() -> None:
    """`REGISTRY_DOCS`, `REGISTRY_METRICS` and `REGISTRY_METRICS_TOKEN` decide whether /docs, /redoc, /openapi.json and
    /metrics answer (off in production, on elsewhere, /metrics without a token), and `REGISTRY_DATA_DIR` is where the
    development key and database go: an operator reading the table learns of none of them."""
    table = _section(README, "Configuration")
    documented = set(re.findall(r"^\| `(REGISTRY_[A-Z0-9_]+)` \|", table, re.MULTILINE))
    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix == "REGISTRY_"
    read = {prefix + name.upper() for name in Settings.model_fields}
    unlisted, unread = sorted(read - documented), sorted(documented - read)
    assert unlisted == [], f"settings the registry reads that README 'Configuration' does not list: {unlisted}"
    assert unread == [], f"README 'Configuration' lists variables the registry does not read: {unread}"


def test_every_section_the_readme_sends_the_reader_to_exists() -> None:
    """README, "Mutual recognition and federation": Issue a certificate on the Beijing node ... as in "First steps".
    There is no such section (the walkthrough is "Walkthrough: from an admin client to an offline check")."""
    headings = {line.lstrip("#").strip() for line in README.splitlines() if line.startswith("#")}
    named = re.findall(r'\bas in "([^"]+)"', README) + re.findall(r'\bsee "([^"]+)"', README)
    missing = [name for name in named if not any(heading.startswith(name) for heading in headings)]
    assert missing == [], f"README refers the reader to sections it does not have: {missing}"
