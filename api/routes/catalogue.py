"""The catalogue: public reading, admin additions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CatalogueWrite, SessionDep
from registry.catalogue import service as catalogue
from registry.catalogue.models import CertType
from registry.catalogue.schemas import CatalogueEntryCreate, CatalogueEntryPublic, CataloguePage, LevelPublic

router = APIRouter(prefix="/v1/catalogue", tags=["catalogue"])


@router.get("", response_model=CataloguePage, operation_id="catalogue-list")
async def list_entries(
    session: SessionDep,
    cert_type: CertType | None = None,
    q: Annotated[str | None, Query(max_length=64, description="matches code, names, series, occupation code")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CataloguePage:
    return await catalogue.search(session, cert_type=cert_type, q=q, limit=limit, offset=offset)


@router.get("/levels", response_model=dict[str, list[LevelPublic]], operation_id="catalogue-levels")
async def levels(session: SessionDep) -> dict[str, list[LevelPublic]]:
    table = await catalogue.levels_by_type(session)
    return {
        cert_type: [
            LevelPublic(code=lv.code, rank=lv.rank, name_zh=lv.name_zh, name_en=lv.name_en) for lv in ladder.values()
        ]
        for cert_type, ladder in table.items()
    }


@router.post(
    "", response_model=CatalogueEntryPublic, status_code=201, operation_id="catalogue-create", responses={409: {}}
)
async def create_entry(body: CatalogueEntryCreate, session: SessionDep, admin: CatalogueWrite) -> CatalogueEntryPublic:
    return await catalogue.add_entry(session, actor=admin.actor, entry=body)
