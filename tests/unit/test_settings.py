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
    "master_key": "3c9f7a1e" * 8,
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


@pytest.mark.parametrize("placeholder", ["00" * 32, "ab" * 32, "FF" * 32])
def test_production_refuses_a_master_key_of_one_repeated_byte(placeholder: str) -> None:
    settings = Settings(**{**PRODUCTION, "master_key": placeholder})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="REGISTRY_MASTER_KEY must be random") as refused:
        settings.check_production()
    assert placeholder.lower() not in str(refused.value).lower()  # the setting is named, its value never shown
    with pytest.raises(ConfigurationError, match="REGISTRY_MASTER_KEY"):
        create_app(settings)


def test_production_refuses_the_identity_providers_key_set_over_plain_http() -> None:
    url = "http://idp.internal.example/jwks.json"
    settings = Settings(**{**PRODUCTION, "holder_idp_jwks_url": url})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="REGISTRY_HOLDER_IDP_JWKS_URL must be an https:// URL") as refused:
        settings.check_production()
    assert "idp.internal.example" not in str(refused.value)
    with pytest.raises(ConfigurationError, match="REGISTRY_HOLDER_IDP_JWKS_URL"):
        create_app(settings)


def test_production_takes_the_identity_providers_key_set_over_https() -> None:
    url = "https://idp.example/jwks.json"
    Settings(**{**PRODUCTION, "holder_idp_jwks_url": url}).check_production()  # type: ignore[arg-type]


@pytest.mark.parametrize("env", ["development", "test"])
def test_outside_production_any_master_key_and_key_set_url_will_do(env: str, tmp_path: Path) -> None:
    settings = Settings(
        env=env, master_key="00" * 32, holder_idp_jwks_url="http://127.0.0.1:9000/jwks", data_dir=tmp_path
    )
    settings.check_production()


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
