"""A retired registry token key is published and trusted for as long as anything it signed may still be checked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.auth import tokens
from registry.config import Settings
from registry.federation import protocol


@pytest.mark.parametrize("access_ttl", [60, 900, 86_400])
def test_the_afterlife_outlasts_every_token_the_key_signs(access_ttl: int) -> None:
    settings = Settings(env="test", access_token_ttl_seconds=access_ttl)
    afterlife = tokens.token_key_afterlife(settings)
    leeway = timedelta(seconds=tokens.LEEWAY_SECONDS)
    assert afterlife >= timedelta(seconds=access_ttl) + leeway
    assert afterlife >= tokens.HOLDER_TOKEN_TTL + leeway
    # A node's service tokens and the statements it signs for peers and partners are checked by their receivers.
    assert afterlife >= protocol.SERVICE_TOKEN_TTL + leeway
    assert afterlife >= timedelta(seconds=protocol.MAX_STATEMENT_AGE_SECONDS) + leeway
