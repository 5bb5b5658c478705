"""The public transparency log: its signed checkpoint, and inclusion and consistency proofs against it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ContextDep, SessionDep, UnlockedSessionDep
from registry.certificates import numbering
from registry.errors import InvalidCertificateNumber
from registry.keys import service as keys
from registry.transparency import service as transparency
from registry.transparency.schemas import CheckpointPublic, ConsistencyProofPublic, InclusionProofPublic

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])
# Proofs read without a transaction or a lock: every row they read is append-only, and a tree size once read stays
# valid, so statements that each see the latest commit still make one consistent proof.


@router.get("/checkpoint", response_model=CheckpointPublic, operation_id="transparency-checkpoint")
async def checkpoint(context: ContextDep, session: SessionDep) -> CheckpointPublic:
    """The current signed tree head, as JSON and as a C2SP signed note; the key is the registry's in its JWKS."""
    signed, kid = await transparency.checkpoint(context, session)
    # Never one signed by a key marked compromised meanwhile (the downloads' rule): 503, ask again.
    await keys.refuse_compromised_signers(session, kids=(kid,))
    return CheckpointPublic.of(signed, kid=kid)


@router.get(
    "/proof/{number}",
    response_model=InclusionProofPublic,
    operation_id="transparency-inclusion-proof",
    responses={
        404: {"description": "no certificate with this number in the log"},
        422: {"description": "tree_size is not a size of the log at which the leaf existed"},
    },
)
async def inclusion_proof(
    number: str,
    session: UnlockedSessionDep,
    tree_size: Annotated[int | None, Query(ge=1, description="prove against this older checkpoint's size")] = None,
) -> InclusionProofPublic:
    """The inclusion proof of the certificate's issuance leaf (its correction leaf, for a corrected successor).
    ``number`` in any form the registry accepts: as printed (grouped with hyphens), as stored, in lower case."""
    try:
        canonical = numbering.normalize_number(number)
    except InvalidCertificateNumber:
        canonical = number  # no certificate's number: the log has no leaf for it, and says so (404)
    proof = await transparency.inclusion(session, number=canonical, tree_size=tree_size)
    return InclusionProofPublic.of(proof)


@router.get(
    "/consistency",
    response_model=ConsistencyProofPublic,
    operation_id="transparency-consistency-proof",
    responses={422: {"description": "from or to is not a size of the log, or from exceeds to"}},
)
async def consistency_proof(
    session: UnlockedSessionDep,
    old_size: Annotated[int, Query(alias="from", ge=1, description="the older checkpoint's tree size")],
    new_size: Annotated[int, Query(alias="to", ge=1, description="the newer checkpoint's tree size")],
) -> ConsistencyProofPublic:
    """Proof that the tree of `to` leaves extends the tree of `from` leaves: nothing before was changed or removed."""
    proof = await transparency.consistency(session, old_size=old_size, new_size=new_size)
    return ConsistencyProofPublic.of(old_size=old_size, new_size=new_size, proof=proof)
