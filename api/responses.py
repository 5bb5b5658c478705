"""How answers are sent: to requests that create certificates (single issuance, batches, corrections), and the one
reading of ``If-None-Match`` for every answer that carries an ETag."""

from __future__ import annotations

from fastapi.responses import Response

from registry.certificates.idempotency import Outcome


def outcome_response(outcome: Outcome) -> Response:
    """Never cached (it holds claim codes), and marked when it is the stored answer to an earlier request."""
    headers = {"Cache-Control": "no-store"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(outcome.body, status_code=outcome.status_code, media_type="application/json", headers=headers)


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag``: by the weak comparison RFC 9110 §13.1.2 asks of it (``W/"x"`` and
    ``"x"`` match; a proxy that compresses an answer weakens its tag), or ``*``."""
    if if_none_match is None:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return "*" in candidates or tag.removeprefix("W/") in candidates
