"""The registry's own JSON-LD context, shipped in the package and served at a stable URL
(``/contexts/talent-registry/v1``): it defines the terms a credential uses beyond VC 2.0 and Open Badges 3.0.3.

Its terms are in the node-independent ``urn:talent-registry:v1#`` namespace (or schema.org), so a certificate number
means the same in a credential from any region's node, whichever host served the context.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

CONTEXT_FILE = Path(__file__).parent / "contexts" / "talent-registry-v1.jsonld"
MEDIA_TYPE = "application/ld+json"


@functools.cache
def registry_context() -> bytes:
    return CONTEXT_FILE.read_bytes()


@functools.cache
def registry_context_etag() -> str:
    return '"' + hashlib.sha256(registry_context()).hexdigest()[:32] + '"'
