"""What ``registry verify-credential`` checks a credential against: files the verifier saved, or — unless told to stay
offline — what the credential itself names: its issuer's JWKS and its status lists, fetched once each.

Nothing here raises on a source that cannot be had: it is noted with a one-line reason, and the check then reports
'unknown' for the step that needed it (registry.credentials.offline), never 'valid'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from registry.credentials.offline import Report, status_entries, verify_credential

FETCH_SECONDS = 10.0
JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class Sources:
    """What the check runs on; ``unreadable`` maps "jwks" or a status-list URL to why it could not be had."""

    jwks: dict[str, Any] | None = None
    status_lists: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def offline_problem(*, credential: str, jwks: str | None, status_lists: list[str]) -> str | None:
    """Why ``--offline`` cannot run as asked (it fetches nothing, so every input must be a file), or None."""
    urls = [source for source in (credential, jwks or "", *status_lists) if is_url(source)]
    if urls:
        return f"--offline fetches nothing, but {urls[0]} is a URL: save it and give the file"
    if jwks is None or not status_lists:
        return (
            "--offline fetches nothing: give --jwks FILE (the registry's /.well-known/jwks.json, saved) and "
            "--status-list FILE for each status list the credential names"
        )
    return None


def issuer_jwks_url(token: str) -> str | None:
    """The JWKS the registry that issued the credential serves: its issuer id is ``{base}/v1/issuers/{code}``."""
    issuer = _claims(token).get("iss")
    if not isinstance(issuer, str) or "/v1/issuers/" not in issuer or not is_url(issuer):
        return None
    return issuer.rsplit("/v1/issuers/", 1)[0] + JWKS_PATH


def status_list_urls(token: str) -> list[str]:
    """The status lists the credential names: one (the two-bit message list), or two in older credentials."""
    urls = [entry.get("statusListCredential") for entry in status_entries(_claims(token))]
    return [url for url in urls if isinstance(url, str) and is_url(url)]


def gather(token: str, *, jwks: str | None, status_lists: list[str], http: httpx.Client) -> Sources:
    """The JWKS and status lists from the given files or URLs; what is not given, from the URLs the credential names."""
    sources = Sources()
    jwks_source = jwks or issuer_jwks_url(token)
    if jwks_source is None:
        sources.unreadable["jwks"] = "no --jwks given and the credential names no registry to fetch it from"
    else:
        text, problem = read(jwks_source, http)
        try:
            sources.jwks = json.loads(text) if text is not None else None
        except ValueError:
            problem = f"JWKS {jwks_source} is not JSON"
        if sources.jwks is None:
            sources.unreadable["jwks"] = problem or f"JWKS {jwks_source} is empty"
    for source in status_lists or status_list_urls(token):
        text, problem = read(source, http)
        list_id = _claims(text).get("id") if text is not None else None
        if isinstance(list_id, str) and text is not None:
            sources.status_lists[list_id] = text.strip()
        else:
            sources.unreadable[source] = problem or f"status list {source} is not a signed status list"
    return sources


def read(source: str, http: httpx.Client) -> tuple[str | None, str | None]:
    """A file's or URL's text, or None with a one-line reason."""
    what = "status list" if "/status-lists/" in source else "JWKS" if "jwks" in source.lower() else "input"
    if not is_url(source):
        try:
            with open(source, encoding="utf-8") as handle:
                return handle.read(), None
        except (OSError, ValueError) as exc:
            return None, f"{what} {source} cannot be read: {_one_line(exc)}"
    try:
        response = http.get(source)
    except httpx.HTTPError as exc:
        return None, f"{what} {source} could not be fetched: {_one_line(exc) or type(exc).__name__}"
    if response.status_code != 200:
        return None, f"{what} {source} could not be fetched: HTTP {response.status_code}"
    return response.text, None


def load(source: str) -> tuple[str | None, str | None]:
    """The credential itself, from a file or a URL."""
    with httpx.Client(timeout=FETCH_SECONDS, follow_redirects=False) as http:
        return read(source, http)


def check(token: str, *, jwks: str | None, status_lists: list[str], offline: bool = False) -> Report:
    """The whole check as ``registry verify-credential`` runs it; ``offline``: no request leaves the machine."""
    transport = httpx.MockTransport(_refuse) if offline else None
    with httpx.Client(timeout=FETCH_SECONDS, follow_redirects=False, transport=transport) as http:
        sources = gather(token, jwks=jwks, status_lists=status_lists, http=http)
    return verify_credential(token, jwks=sources.jwks, status_lists=sources.status_lists, unreadable=sources.unreadable)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("not fetched: --offline", request=request)


def _claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
