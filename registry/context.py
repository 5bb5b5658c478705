"""What every service call needs besides the session: settings, the master-key box and the key cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.config import Settings
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import KeyRing


@dataclass(frozen=True, slots=True)
class RegistryContext:
    settings: Settings
    box: SecretsBox
    keyring: KeyRing
    # registry.certificates.verification.ReadCaches; typed loosely to keep this module below the domain packages.
    caches: Any = field(default=None)
    identity_provider: Any = None  # registry.holders.idp.IdentityProvider when REGISTRY_HOLDER_IDP_* is configured

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryContext:
        box = SecretsBox.from_master_key(settings.master_key_bytes)
        from registry.certificates.verification import ReadCaches
        from registry.holders.idp import IdentityProvider

        provider = None
        if settings.holder_idp_jwks_url and settings.holder_idp_issuer and settings.holder_idp_audience:
            provider = IdentityProvider(
                jwks_url=settings.holder_idp_jwks_url,
                issuer=settings.holder_idp_issuer,
                audience=settings.holder_idp_audience,
                id_claim=settings.holder_idp_id_claim,
                id_type_claim=settings.holder_idp_id_type_claim,
            )
        return cls(
            settings=settings, box=box, keyring=KeyRing(box=box), caches=ReadCaches(), identity_provider=provider
        )
