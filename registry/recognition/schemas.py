"""Recognition rules and partner questions: request and answer shapes."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, model_validator

from registry.catalogue.models import CertType
from registry.catalogue.schemas import RegistryDay
from registry.config import Region
from registry.errors import FieldValueError
from registry.i18n import _
from registry.recognition.models import Decision, RuleKind
from registry.schemas import (
    Code,
    FlowingText200,
    FlowingText500,
    FlowingText1000,
    NameToMatch,
    StrictInput,
    Text64,
    Text256,
)
from registry.verification.schemas import VerificationResult, VerifiedCertificate

SeriesCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,31}$")]
LevelCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
# Text a person reads (registry.schemas), typed on one line or several: what a rule's conditions and a question's stated
# purpose say is shown to others and written to the audit log, so neither may hide control, invisible or text-direction
# characters; line breaks become spaces.
Conditions = FlowingText500
ConditionsEn = FlowingText1000
MAX_QUERY_ITEMS = 1_000


class Equivalent(StrictInput):
    """What the certificate counts as in the target region. An unset part means "the same": no catalogue_code keeps
    the certificate's own entry, no level keeps its level. A bridge names the other ladder's cert_type."""

    cert_type: CertType | None = None
    series_code: SeriesCode | None = None
    catalogue_code: Code | None = None
    level: LevelCode | None = None


class Basis(StrictInput):
    code: Text64 = Field(description="文号 or the registry's code of the document")
    title: Text256


class RuleCreate(StrictInput):
    kind: RuleKind = Field(default=RuleKind.recognition, description="recognition (default) or bridge")
    from_region: Region
    to_region: Region
    cert_type: CertType
    catalogue_codes: Annotated[list[Code], Field(max_length=200)] = Field(
        default_factory=list, description="the entries covered; empty: the whole series, or the whole type"
    )
    series_code: SeriesCode | None = Field(default=None, description="a title series (系列) covered as a whole")
    levels: Annotated[list[LevelCode], Field(max_length=8)] = Field(
        default_factory=list, description="the levels covered; empty: every level"
    )
    decision: Decision
    equivalent: Equivalent | None = None
    conditions_zh: Conditions | None = None
    conditions_en: ConditionsEn | None = None
    basis: Basis
    effective_from: RegistryDay
    effective_until: RegistryDay | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RuleCreate:
        if self.effective_until is not None and self.effective_until < self.effective_from:
            raise FieldValueError("effective_until", _("must not be before effective_from"))
        if self.kind is RuleKind.recognition and self.from_region == self.to_region:
            raise FieldValueError("to_region", _("recognition is between two different regions"))
        if self.series_code is not None and self.cert_type is not CertType.title:
            raise FieldValueError("series_code", _("only title certificates belong to a series"))
        if self.decision is Decision.conditional and (self.conditions_zh is None or self.conditions_en is None):
            raise FieldValueError("conditions_zh", _("a conditional decision states its conditions in zh and en"))
        other_type = self.equivalent.cert_type if self.equivalent else None
        if self.kind is RuleKind.bridge and (other_type is None or other_type == self.cert_type):
            raise FieldValueError("equivalent.cert_type", _("a bridge leads to the other ladder: name its cert_type"))
        if self.kind is RuleKind.recognition and other_type not in (None, self.cert_type):
            raise FieldValueError("equivalent.cert_type", _("a recognition rule stays on the same ladder"))
        return self


class RuleRetire(StrictInput):
    reason: Text256


class RuleStatus(StrEnum):
    in_force = "in_force"
    scheduled = "scheduled"  # effective_from is still ahead
    lapsed = "lapsed"  # effective_until has passed
    retired = "retired"
    superseded = "superseded"  # still on file, but its revision (superseded_by) has taken effect and decides instead


class LocalizedText(BaseModel):
    zh: str
    en: str


class BasisPublic(BaseModel):
    code: str
    title: str


class EquivalentPublic(BaseModel):
    cert_type: CertType
    series_code: str | None
    catalogue_code: str | None
    name_zh: str | None
    name_en: str | None
    level: str | None


class RulePublic(BaseModel):
    id: int
    kind: RuleKind
    status: RuleStatus
    from_region: Region
    to_region: Region
    cert_type: CertType
    catalogue_codes: list[str]
    series_code: str | None
    levels: list[str]
    decision: Decision
    equivalent: EquivalentPublic | None
    conditions: LocalizedText | None
    basis: BasisPublic
    effective_from: date
    effective_until: date | None
    supersedes: int | None
    superseded_by: int | None
    created_at: datetime
    created_by: str
    retired_at: datetime | None
    retired_reason: str | None


class RulePage(BaseModel):
    data: list[RulePublic]
    count: int


class Purpose(StrEnum):
    hiring = "hiring"
    talent_introduction = "talent_introduction"
    title_evaluation = "title_evaluation"
    social_insurance = "social_insurance"
    household_registration = "household_registration"
    other = "other"


PurposeText = FlowingText200


class QueryItem(StrictInput):
    number: Annotated[str, Field(min_length=1, max_length=32)]
    holder_name: NameToMatch


class BulkQuery(StrictInput):
    purpose: Purpose
    purpose_text: PurposeText | None = Field(default=None, description="required when purpose is other")
    to_region: Region | None = Field(default=None, description="partners: their own region (the default)")
    items: Annotated[list[Any], Field(min_length=1, max_length=MAX_QUERY_ITEMS)] = Field(
        description=f"up to {MAX_QUERY_ITEMS} of {{number, holder_name}}, answered in order, each on its own"
    )

    @model_validator(mode="after")
    def _other_says_what(self) -> BulkQuery:
        if self.purpose is Purpose.other and self.purpose_text is None:
            raise FieldValueError("purpose_text", _("say what the query is for when the purpose is other"))
        return self


class Bridge(BaseModel):
    """A skill↔title bridge the certificate opens in the target region (eligibility, not equivalence of ladders)."""

    rule_id: int
    equivalent: EquivalentPublic | None
    conditions: LocalizedText | None
    basis: BasisPublic


class RecognitionAnswer(BaseModel):
    """Whether a certificate is genuine, current and recognised in ``to_region``, and what it counts as there."""

    number: str
    result: VerificationResult
    reason: str | None = Field(default=None, description="why the result is not valid, as in public verification")
    to_region: Region
    decision: Decision
    decision_reason: str | None = Field(
        default=None,
        description="why not recognised: the certificate's result (revoked, expired...), no_rule, or a peer failure "
        "(peer_unreachable, peer_timeout...: result unknown, no certificate — no node judged it)",
    )
    rule_id: int | None = None
    equivalent: EquivalentPublic | None = None
    conditions: LocalizedText | None = None
    basis: list[BasisPublic] = Field(default_factory=list)
    bridges: list[Bridge] = Field(default_factory=list)
    certificate: VerifiedCertificate | None
    superseded_by: str | None = Field(
        default=None, description="the corrected successor's number, when a correction replaced this certificate"
    )
    answered_by: Region = Field(
        description="the region whose node answered: the one that judged the certificate, or this node when the "
        "certificate's node could not be asked (result unknown, no certificate)"
    )
    checked_at: datetime
    signature: str | None = Field(
        default=None,
        description="compact JWS (typ recognition-answer+jwt) by the answering node's key over this answer, "
        "without this field, for the agency's files",
    )


class QueryResult(BaseModel):
    index: int
    status: int = Field(description="200 with an answer; 404 (no such number and name) or 422 with a problem")
    answer: RecognitionAnswer | None = None
    problem: dict[str, Any] | None = None


class BulkAnswer(BaseModel):
    purpose: Purpose
    to_region: Region
    count: int
    results: list[QueryResult]
