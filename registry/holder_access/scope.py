"""How far a holder session reaches: what a session opened with a claim code is told about the certificates it does
not show (``registry.auth.tokens.holder_token`` limits it to the body that issued the code)."""

from __future__ import annotations

from registry.i18n import Message, _


def other_bodies_notice() -> Message:
    """Why certificates from other evaluation bodies are missing, and how to see them."""
    return _(
        "This session shows only the certificates of the evaluation body whose claim code you signed in with. "
        "Certificates from other bodies appear after signing in with that body's claim code, or through the "
        "identity provider."
    )
