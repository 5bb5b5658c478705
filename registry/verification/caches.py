"""Per-process caches for verification: the catalogue names, the level names and each body's filed scope.

Nothing here is authoritative and everything expires: a change reaches every process within a minute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select

from registry.catalogue.models import CatalogueEntry, Level
from registry.issuers.models import FiledScope
from registry.verification.reading import Connection

CATALOGUE_SECONDS = 60.0
SCOPE_SECONDS = 30.0  # a change to a body's filing reaches every process within this


@dataclass(frozen=True, slots=True)
class EntryNames:
    series_zh: str | None
    name_zh: str
    name_en: str
    series_en: str | None = None


@dataclass(frozen=True, slots=True)
class LevelNames:
    name_zh: str
    name_en: str


@dataclass
class ReadCaches:
    catalogue: dict[str, EntryNames] = field(default_factory=dict)
    levels: dict[tuple[str, str], LevelNames] = field(default_factory=dict)
    catalogue_loaded: float = -1e9
    scopes: dict[int, tuple[float, list[FiledScope]]] = field(default_factory=dict)

    async def entry(self, connection: Connection, code: str) -> EntryNames | None:
        if code not in self.catalogue or time.monotonic() - self.catalogue_loaded > CATALOGUE_SECONDS:
            await self._load_catalogue(connection)
        return self.catalogue.get(code)

    async def level(self, connection: Connection, cert_type: str, code: str) -> LevelNames | None:
        if (cert_type, code) not in self.levels:
            await self._load_catalogue(connection)
        return self.levels.get((cert_type, code))

    async def _load_catalogue(self, connection: Connection) -> None:
        e, lv = CatalogueEntry.__table__.c, Level.__table__.c  # type: ignore[attr-defined]
        entries = await connection.execute(select(e.code, e.series_zh, e.name_zh, e.name_en, e.series_en))
        self.catalogue = {
            row.code: EntryNames(row.series_zh, row.name_zh, row.name_en, row.series_en) for row in entries
        }
        levels = await connection.execute(select(lv.cert_type, lv.code, lv.name_zh, lv.name_en))
        self.levels = {(cert_type, code): LevelNames(zh, en) for cert_type, code, zh, en in levels}
        self.catalogue_loaded = time.monotonic()

    async def filed_scopes(self, connection: Connection, issuer_id: int) -> list[FiledScope]:
        hit = self.scopes.get(issuer_id)
        if hit is not None and time.monotonic() - hit[0] < SCOPE_SECONDS:
            return hit[1]
        s = FiledScope.__table__.c  # type: ignore[attr-defined]
        rows = await connection.execute(select(FiledScope.__table__).where(s.issuer_id == issuer_id))  # type: ignore[attr-defined]
        scopes = [FiledScope(**row._mapping) for row in rows]
        self.scopes[issuer_id] = (time.monotonic(), scopes)
        return scopes
