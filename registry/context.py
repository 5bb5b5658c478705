"""What most service calls need besides the session: the settings, the master-key box and the cache of parsed keys.

A frozen dataclass of typed parts from the packages at the bottom of the domain, so every package can take it
without importing back. Parts with a life of their own — the verifier's caches and read pool, the external identity
provider's client — are built beside it by the application and handed to the calls that need them.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.config import Settings
from registry.keys.secrets_box import SecretsBox
from registry.keys.service import KeyRing


@dataclass(frozen=True, slots=True)
class RegistryContext:
    settings: Settings
    box: SecretsBox
    keyring: KeyRing

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryContext:
        box = SecretsBox.from_master_key(settings.master_key_bytes)
        return cls(settings=settings, box=box, keyring=KeyRing(box=box))
