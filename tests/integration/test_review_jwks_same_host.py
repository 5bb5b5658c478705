"""Review: without a trust list, a page on the credential's registry's host is not taken for its keys when written
with a trailing dot on the host, in capitals, or over the other scheme or port — it is the same server's page."""

from __future__ import annotations

import fastapi
import httpx
import pytest

from tests.integration.test_credential_jwks_locations import _forged, _steps
from tests.integration.test_credential_trust import JWKS, REGISTRY, _registry

ECHO_PATH = "/s/a-page-that-shows-what-its-author-typed"


@pytest.mark.parametrize(
    "echo",
    [
        f"https://registry.test.{ECHO_PATH}",  # the same host, its root label written
        f"http://registry.test{ECHO_PATH}",  # the same host over plain HTTP
        f"https://registry.test:8443{ECHO_PATH}",  # the same host on another port
        f"https://REGISTRY.TEST.{ECHO_PATH}",
    ],
)
async def test_a_page_on_the_registrys_host_written_otherwise_is_not_taken_for_keys(
    app: fastapi.FastAPI, client: httpx.AsyncClient, echo: str
) -> None:
    genuine, _list_url, network = await _registry(app, client)
    forged, keys = _forged(genuine, network.served[JWKS])
    network.served[str(httpx.URL(echo))] = keys

    gathered, requests = network.gather(forged, jwks=echo)

    assert requests == [], requests
    said = _steps(forged, gathered)["signature"]
    assert said.startswith(f"unknown JWKS {echo} is not where {REGISTRY} publishes its keys"), said


async def test_a_key_set_on_another_host_is_still_read_without_a_trust_list(
    app: fastapi.FastAPI, client: httpx.AsyncClient
) -> None:
    genuine, _list_url, network = await _registry(app, client)
    mirror = "https://keys.example/registry.test/jwks.json"
    network.served[mirror] = network.served[JWKS]

    gathered, requests = network.gather(genuine, jwks=mirror)

    assert requests[0] == mirror, requests
    assert _steps(genuine, gathered)["signature"].startswith("pass"), _steps(genuine, gathered)["signature"]
