"""Settings: development defaults are convenient, production refuses every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.app import create_app
from registry.config import Settings
from registry.errors import ConfigurationError

PRODUCTION = {
    "env": "production",
    "database_url": "postgresql+asyncpg://registry@db/registry",
    "master_key": "ab" * 32,
    "public_base_url": "https://registry.hrss.beijing.example",
}


def test_production_starts_with_everything_configured() -> None:
    Settings(**PRODUCTION).check_production()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"master_key": None}, "REGISTRY_MASTER_KEY"),
        ({"database_url": "sqlite+aiosqlite:///./.registry/registry.db"}, "REGISTRY_DATABASE_URL"),
        ({"public_base_url": "http://127.0.0.1:8000"}, "REGISTRY_PUBLIC_BASE_URL"),
    ],
)
def test_production_refuses_a_development_default(override: dict[str, object], complaint: str) -> None:
    settings = Settings(**{**PRODUCTION, **override})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=complaint):
        settings.check_production()
    with pytest.raises(ConfigurationError, match=complaint):
        create_app(settings)


def test_master_key_must_be_32_bytes_of_hex() -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        Settings(master_key="abc")


def test_development_generates_and_keeps_one_master_key(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).master_key_bytes
    second = Settings(data_dir=tmp_path).master_key_bytes
    assert first == second
    assert len(first) == 32
    assert (tmp_path / "master.key").stat().st_mode & 0o077 == 0


def test_environment_variables_use_the_registry_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_REGION", "TJ")
    monkeypatch.setenv("REGISTRY_PUBLIC_BASE_URL", "https://tj.example/")
    settings = Settings()
    assert settings.region == "TJ"
    assert settings.public_base_url == "https://tj.example"
