"""How answers to requests that create certificates are sent (single issuance, batches, corrections)."""

from __future__ import annotations

from fastapi.responses import Response

from registry.certificates.idempotency import Outcome


def outcome_response(outcome: Outcome) -> Response:
    """Never cached (it holds claim codes), and marked when it is the stored answer to an earlier request."""
    headers = {"Cache-Control": "no-store"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(outcome.body, status_code=outcome.status_code, media_type="application/json", headers=headers)
