"""Catalogue request and response shapes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from registry.catalogue.models import CertType
from registry.errors import FieldValueError
from registry.i18n import _
from registry.schemas import Code, Day, StrictInput, Text64, Text128, Text256, printed

# The PRC's title and skill-level system begins with the PRC: no catalogue entry, recognition rule or filing of an
# evaluation body is dated before its founding. An earlier day is a typo (0202-01-01 for 2020-01-01), not history.
FIRST_DAY: Final = date(1949, 10, 1)


def on_or_after_first_day(value: date) -> date:
    if value < FIRST_DAY:
        raise ValueError(_("must be on or after {earliest}", earliest=FIRST_DAY.isoformat()))
    return value


RegistryDay = Annotated[Day, AfterValidator(on_or_after_first_day)]
"""A day in the registry's own records (catalogue entries, recognition rules, filed scopes): ``YYYY-MM-DD``, on or
after ``FIRST_DAY``. The one rule every such body field is held to."""

OccupationCode = Annotated[str, StringConstraints(pattern=r"^\d-\d{2}-\d{2}-\d{2}$")]
LevelCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]


class CatalogueEntryCreate(StrictInput):
    code: Code
    cert_type: CertType
    series_zh: Annotated[Text64, AfterValidator(printed)] | None = None  # these three are printed on the PDF
    series_en: Text128 | None = None
    name_zh: Annotated[Text64, AfterValidator(printed)]
    name_en: Annotated[Text128, AfterValidator(printed)]
    occupation_code: OccupationCode | None = None
    levels: Annotated[list[LevelCode], Field(min_length=1, max_length=8)]
    effective_from: RegistryDay
    effective_until: RegistryDay | None = None
    basis: Text256 | None = None

    @model_validator(mode="after")
    def _type_specific_fields(self) -> CatalogueEntryCreate:
        if self.cert_type is CertType.title and self.series_zh is None:
            raise FieldValueError("series_zh", _("is required for a title entry"))
        if self.cert_type is CertType.skill and self.occupation_code is None:
            raise FieldValueError("occupation_code", _("is required for a skill entry"))
        if self.effective_until is not None and self.effective_until < self.effective_from:
            raise FieldValueError("effective_until", _("is before effective_from"))
        if len(set(self.levels)) != len(self.levels):
            raise FieldValueError("levels", _("contains duplicates"))
        return self


class LevelPublic(BaseModel):
    code: str
    rank: int
    name_zh: str
    name_en: str


class CatalogueEntryPublic(BaseModel):
    code: str
    version: int
    cert_type: CertType
    series_code: str | None
    series_zh: str | None
    series_en: str | None
    name_zh: str
    name_en: str
    occupation_code: str | None
    levels: list[LevelPublic]
    effective_from: date
    effective_until: date | None
    basis: str | None


class CataloguePage(BaseModel):
    data: list[CatalogueEntryPublic]
    count: int
