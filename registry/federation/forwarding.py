"""Verification by number + name, answered by the node of the region the number carries.

A number of this node's region — or of a region with no configured peer — is answered here, and so is a question
naming a holder no certificate can carry (an identity number typed into the name: it never goes to a peer). Any
other is forwarded to its region's node, which answers from its own records only: a forwarded question is never
forwarded again (the peer-facing endpoint calls ``Verifier.by_number`` directly, never this module), so no loop can
form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from registry.certificates import numbering
from registry.db import utcnow
from registry.errors import InvalidCertificateNumber, InvalidInput, NotFound, PeerFailure
from registry.federation import answers
from registry.federation.peers import Federation
from registry.i18n import _
from registry.metrics import VERIFICATIONS
from registry.verification.reading import Connection
from registry.verification.schemas import Verification, VerificationResult
from registry.verification.verifier import Verifier
from registry.verification.visits import Visit

VERIFY_PATH = "/v1/federation/verify"


def home_region(number: str) -> str | None:
    """The region a well-formed number carries, or None for a malformed one (the local answer says what is wrong)."""
    try:
        return numbering.normalize_number(number)[:2]
    except InvalidCertificateNumber:
        return None


def unknown(number: str, region: str, reason: str) -> Verification:
    """What a scanner sees when the node that holds the certificate cannot be asked: never valid, and answered by
    ``region``, this node's — the peer said nothing this node passes on."""
    return Verification(
        result=VerificationResult.unknown,
        reason=reason,
        certificate=None,
        signature_valid=False,
        checked_at=utcnow(),
        answered_by=region,
    )


async def verify_by_number(
    federation: Federation,
    verifier: Verifier,
    connection: Connection,
    *,
    number: str,
    holder_name: str,
    channel: str = "number",
) -> Verification:
    region = home_region(number)
    # A name no certificate carries (an identity number typed into it) is not found here: never sent to a peer.
    if region is None or federation.peer_for_region(region) is None or answers.names_no_holder(holder_name):
        return await verifier.by_number(connection, number=number, holder_name=holder_name, channel=channel)
    canonical = numbering.normalize_number(number)
    try:
        answer = await federation.ask(region, VERIFY_PATH, {"number": canonical, "holder_name": holder_name})
    except PeerFailure as failure:
        VERIFICATIONS.labels(result="unknown", channel=f"peer:{channel}").inc()
        return unknown(canonical, federation.region, failure.reason)
    question = _Question(number=canonical, holder_name=holder_name, region=region, here=federation.region)
    return _from_peer(answer, question, channel=channel, max_age_seconds=federation.cache_seconds)


@dataclass(frozen=True, slots=True)
class _Question:
    number: str  # canonical
    holder_name: str
    region: str  # the peer's, which answers for the number
    here: str  # this node's, which answers when the peer's answer is not passed on


def _from_peer(answer: Any, question: _Question, *, channel: str, max_age_seconds: float) -> Verification:
    """The peer's ``{status, body}`` as this node's answer: a 404 or 422 said in this node's own words, a 200 only with
    a verification that agrees with the question (registry.federation.answers); anything else is not trusted."""
    status = answer.get("status") if isinstance(answer, dict) else None
    if type(status) is not int:  # not True for 1, nor 404.0 for 404
        status = None
    if status == 404:
        VERIFICATIONS.labels(result="not_found", channel=f"peer:{channel}").inc()
        raise NotFound(_("no certificate with this number and holder name"))
    if status == 422:
        raise InvalidInput.field("number", _("the certificate number is not valid"))
    if status == 200:
        try:
            verification = Verification.model_validate(answer.get("body"))
        except ValidationError:
            verification = None
        if verification is not None and answers.verification_agrees(
            verification,
            number=question.number,
            holder_name=question.holder_name,
            region=question.region,
            max_age_seconds=max_age_seconds,
        ):
            VERIFICATIONS.labels(result=verification.result.value, channel=f"peer:{channel}").inc()
            return verification
    return unknown(question.number, question.here, "peer_answer_not_trusted")


async def answer_peer(
    verifier: Verifier, connection: Connection, *, number: str, holder_name: str, peer_region: str | None = None
) -> dict[str, Any]:
    """This node's own answer to a peer's question, as ``{status, body}``: looked up here, never forwarded. The
    holder sees it as asked through ``peer_region``'s node."""
    visit = Visit("peer", region=peer_region)
    try:
        verification = await verifier.by_number(
            connection, number=number, holder_name=holder_name, channel="peer", visit=visit
        )
    except NotFound:
        return {"status": 404}
    except InvalidInput:
        return {"status": 422}
    return {"status": 200, "body": verification.model_dump(mode="json")}
