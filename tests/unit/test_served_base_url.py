"""The public base URL `registry serve --host H --port P` derives when none is configured."""

from __future__ import annotations

import pytest

from registry.config import Settings, served_base_url
from registry.errors import ConfigurationError
from tests.conftest import MASTER_KEY


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8123, "http://127.0.0.1:8123"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),  # noqa: S104 — a wildcard bind, as an operator types it
        ("::", 9000, "http://127.0.0.1:9000"),
        ("::1", 9001, "http://[::1]:9001"),
        ("[fe80::1]", 80, "http://[fe80::1]:80"),
        ("registry.local", 8080, "http://registry.local:8080"),
    ],
)
def test_the_served_address_becomes_the_base_url(host: str, port: int, url: str) -> None:
    assert served_base_url(host, port) == url


def test_a_configured_base_url_is_kept() -> None:
    settings = Settings(env="development", master_key=MASTER_KEY, public_base_url="http://registry.example:8000")
    assert settings.base_url_for_serving("127.0.0.1", 9000) is None


def test_an_unset_base_url_follows_the_port_outside_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_PUBLIC_BASE_URL", raising=False)
    settings = Settings(env="development", master_key=MASTER_KEY)
    assert settings.base_url_for_serving("0.0.0.0", 9000) == "http://127.0.0.1:9000"  # noqa: S104


def test_production_never_derives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_PUBLIC_BASE_URL", raising=False)
    settings = Settings(env="production", master_key=MASTER_KEY, database_url="postgresql+asyncpg://db/registry")
    assert settings.base_url_for_serving("0.0.0.0", 443) is None  # noqa: S104
    with pytest.raises(ConfigurationError, match="REGISTRY_PUBLIC_BASE_URL"):
        settings.check_production()
