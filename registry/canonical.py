"""Canonical JSON: sorted keys, no insignificant whitespace, UTF-8 — the bytes that signatures and hashes cover."""

from __future__ import annotations

from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
