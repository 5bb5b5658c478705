"""What ``registry verify-credential`` checks a credential against: files the verifier saved, or — unless told to stay
offline — what the credential itself names: its issuer's JWKS and its status lists, fetched once each.

The keys are the trust anchor, so they never come from the credential alone: a credential made by anyone names, in its
own ``iss``, a "registry" serving that someone's keys, and would verify against them. Without ``--jwks`` the JWKS is
fetched only from a registry the verifier has said it trusts (``--trust BASE_URL``, or ``REGISTRY_TRUSTED_REGISTRIES``);
a credential naming any other is 'unknown', with what to give. Once there is such a list, it holds with ``--jwks`` too:
whoever hands over a key set chooses its keys, so a credential of another registry is checked against none, and one
naming a trusted registry (which any copy of this software can call itself) given with a ``--jwks`` FILE is checked,
online, against that registry's own JWKS, fetched (``_trusted_keys``); only ``--offline`` takes the file, said to be
the verifier's own saved copy of that registry's keys. A ``--jwks`` URL on the credential's registry's host is taken
only if it is ``{base}/.well-known/jwks.json``: any other page there (one showing what someone typed) is not its keys.

What a credential names is fetched only once it is known to be the trusted registry's word: without ``--status-list``,
the status lists are fetched after the credential's signature verifies against that JWKS, at most the two a credential
of this registry can name (one ``message`` entry, or the older ``revocation`` and ``suspension`` pair), and only from
under the base URL of the registry whose JWKS it is: the ``--trust`` base, the base of a ``--jwks`` URL (its origin
unless it ends in /.well-known/jwks.json), or — for a ``--jwks`` FILE, which names no registry — the registry in the
verified ``iss``. So a forged or unsigned credential sends no request anywhere, and a signed one none outside its
registry. Status lists given with ``--status-list`` are read as given, unless — the tool being allowed to fetch — one
is older than its ``ttl`` allows (registry.credentials.freshness; judged only of a list whose signature verifies against
the same keys as the credential's): the holder's snapshot then gives way to the current
list, fetched from its own URL under that same registry, or the status is 'unknown'.

Nothing here raises on a source that cannot be had: it is noted with a one-line reason, and the check then reports
'unknown' for the step that needed it (registry.credentials.offline), never 'valid'.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import jwt

from registry.credentials import freshness
from registry.credentials.hosts import ascii_host
from registry.credentials.offline import Report, signed_claims, status_entries, verify_credential
from registry.http_reasons import http_reason, status_reason
from registry.i18n import _
from registry.os_reasons import os_reason

FETCH_SECONDS = 10.0
JWKS_PATH = "/.well-known/jwks.json"
TRUST_ENV = "REGISTRY_TRUSTED_REGISTRIES"  # base URLs, separated by spaces or commas
MOST_STATUS_ENTRIES = 2  # one message entry, or the older revocation and suspension pair
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class Sources:
    """What the check runs on; ``unreadable`` maps "jwks" or a status-list URL to why it could not be had."""

    jwks: dict[str, Any] | None = None
    status_lists: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    keys_note: str | None = None  # where the keys came from, when the signature step must say it (_trusted_keys)


def is_url(source: str) -> bool:
    return source[:8].lower().startswith(("http://", "https://"))  # a scheme is case-insensitive (RFC 3986)


def offline_problem(*, credential: str, jwks: str | None, status_lists: list[str]) -> str | None:
    """Why ``--offline`` cannot run as asked (it fetches nothing, so every input must be a file), or None."""
    urls = [source for source in (credential, jwks or "", *status_lists) if is_url(source)]
    if urls:
        return _("--offline fetches nothing, but {url} is a URL: save it and give the file", url=urls[0])
    if jwks is None or not status_lists:
        return _(
            "--offline fetches nothing: give --jwks FILE (the registry's /.well-known/jwks.json, saved) and "
            "--status-list FILE for each status list the credential names"
        )
    return None


def issuer_registry(token: str) -> str | None:
    """The base URL of the registry the credential says issued it: its issuer id is ``{base}/v1/issuers/{code}``."""
    return _registry_of(_claims(token).get("iss"))


def _registry_of(issuer: object) -> str | None:
    if not isinstance(issuer, str) or "/v1/issuers/" not in issuer or not is_url(issuer):
        return None
    return issuer.rsplit("/v1/issuers/", 1)[0]


def trusted_registries(given: list[str], environ: Mapping[str, str]) -> list[str]:
    """The registries the verifier trusts: ``--trust`` values, then ``REGISTRY_TRUSTED_REGISTRIES``."""
    return [*given, *environ.get(TRUST_ENV, "").replace(",", " ").split()]


def same_registry(one: str, other: str) -> bool:
    """Whether two base URLs name one registry: scheme and host in any case, a default port written or not, a
    trailing slash or not. Hosts are compared as the report shows them and httpx fetches them: in ASCII
    (registry.credentials.hosts), so ``bеijing`` (a Cyrillic ``е``) is never ``beijing``."""
    try:
        a, b = urlsplit(one.strip()), urlsplit(other.strip())
        ports = (a.port or _DEFAULT_PORTS.get(a.scheme.lower())), (b.port or _DEFAULT_PORTS.get(b.scheme.lower()))
    except ValueError:  # a port out of range or not a number
        return False
    hosts = ascii_host(a.hostname or "").lower(), ascii_host(b.hostname or "").lower()
    return (
        bool(a.hostname)
        and (a.scheme.lower(), hosts[0], a.path.rstrip("/")) == (b.scheme.lower(), hosts[1], b.path.rstrip("/"))
        and ports[0] == ports[1]
    )


def under_registry(url: str, base: str) -> bool:
    """Whether a URL is one the registry at ``base`` serves: its scheme, host and port, a path under its base path,
    and no dot segment that would climb out of it."""
    try:
        parts, base_path = urlsplit(url.strip()), urlsplit(base.strip()).path.rstrip("/")
    except ValueError:
        return False
    return (
        is_url(url.strip())
        and not any(unquote(segment) in {".", ".."} for segment in parts.path.split("/"))
        and parts.path.startswith(base_path + "/")
        and same_registry(f"{parts.scheme}://{parts.netloc}{base_path}", base)
    )


def on_registry_host(url: str, base: str) -> bool:
    """Whether ``url`` is a URL on the host of the registry at ``base``: any scheme, port, case, root label or not."""
    with suppress(ValueError):  # "https://[::1" is no address: not the registry's
        host, its = (ascii_host(urlsplit(one.strip()).hostname or "").lower().rstrip(".") for one in (url, base))
        return is_url(url) and host == its != ""
    return False


def is_registry_jwks(url: str, base: str) -> bool:
    """Whether a URL is the one key set the registry at ``base`` publishes, ``{base}/.well-known/jwks.json`` (scheme
    and host in any case, a default port or not), with no query or fragment: no other page under it is its keys."""
    with suppress(ValueError):
        parts = urlsplit(url.strip())
        base_path = parts.path.removesuffix(JWKS_PATH)
        return (
            is_url(url.strip())
            and parts.path.endswith(JWKS_PATH)
            and not {"?", "#"} & set(url)
            and same_registry(f"{parts.scheme}://{parts.netloc}{base_path}", base)
            and base_path == urlsplit(base.strip()).path.rstrip("/")
        )
    return False


def _jwks_source(token: str, jwks: str | None, trusted: list[str]) -> tuple[str | None, str]:
    """Where the JWKS comes from, or None and why not: the given file or URL, else the registry the credential names
    if it is one the verifier trusts. Once the verifier has said which registries they trust, a credential of any
    other is checked against no keys at all, whatever ``--jwks`` came with it (the applicant's own look-alike
    registry can hand over its own keys), a JWKS URL only from under its registry; on its host, only its JWKS."""
    registry = issuer_registry(token)
    if trusted:
        problem = _untrusted(registry, token, jwks, trusted)
        if problem is not None:
            return None, problem
    if jwks is not None:
        if registry is not None and on_registry_host(jwks, registry) and not is_registry_jwks(jwks, registry):
            return None, _not_its_jwks(jwks, registry)
        return jwks, ""
    if registry is None:
        return None, _("no --jwks given and the credential names no registry to fetch it from")
    if not any(same_registry(registry, base) for base in trusted):
        return None, _(
            "the credential names {registry} as its registry, which you have not said you trust: give --trust "
            "{registry} if that is the registry you mean, or --jwks FILE|URL from the registry you trust",
            registry=registry,
        )
    return registry + JWKS_PATH, ""


def _untrusted(registry: str | None, token: str, jwks: str | None, trusted: list[str]) -> str | None:
    """Why a credential is not checked against a trust list, if it is not: it names no registry, or none trusted,
    or the JWKS URL given is not its registry's."""
    named = ", ".join(trusted)
    if registry is None:
        return _(
            "the credential's issuer {iss!r:.120} names no registry, so none of those you trust ({trusted})",
            iss=_claims(token).get("iss"),
            trusted=named,
        )
    if not any(same_registry(registry, base) for base in trusted):
        return _(
            "the credential names {registry} as its registry, which is none of those you trust ({trusted}): give "
            "--trust {registry} if that is the registry you mean",
            registry=registry,
            trusted=named,
        )
    if jwks is None or not is_url(jwks) or is_registry_jwks(jwks, registry):
        return None
    if not under_registry(jwks, registry):
        return _(
            "JWKS {jwks} is not under {registry}, the registry the credential names, which you trust: give --jwks "
            "{registry}/.well-known/jwks.json, or no --jwks",
            jwks=jwks,
            registry=registry,
        )
    return _not_its_jwks(jwks, registry)


def _not_its_jwks(jwks: str, registry: str) -> str:
    return _(
        "JWKS {jwks} is not where {registry} publishes its keys, and nothing else it serves is taken for them: give "
        "--jwks {registry}/.well-known/jwks.json, or no --jwks",
        jwks=jwks,
        registry=registry,
    )


def gather(
    token: str,
    *,
    jwks: str | None,
    status_lists: list[str],
    http: httpx.Client,
    trusted: list[str] | None = None,
    offline: bool = False,
    now: datetime | None = None,
) -> Sources:
    """The JWKS and status lists from the given files or URLs; what is not given, from the URLs the credential names:
    its JWKS only from a registry in ``trusted``, its status lists only once its signature verifies (module doc).
    Unless ``offline``, a given list kept longer than its ``ttl`` is replaced by the current one (``_refresh``)."""
    sources = Sources()
    jwks_source, why_not = _jwks_source(token, jwks, trusted or [])
    if jwks_source is None:
        sources.unreadable["jwks"] = why_not
    elif trusted and jwks is not None and not is_url(jwks):
        jwks_source = _trusted_keys(sources, token, jwks, http, offline=offline)
    else:
        sources.jwks, problem = _read_jwks(jwks_source, http)
        if sources.jwks is None:
            sources.unreadable["jwks"] = problem
    claims = signed_claims(token, sources.jwks) if sources.jwks is not None and jwks_source is not None else None
    # Without verified claims the signature step says why; a forgery's URLs are not the registry's word.
    base = _list_base(jwks_source, claims) if claims is not None and jwks_source is not None else None
    if status_lists:
        _read_lists(sources, status_lists, http)
        if not offline and claims is not None:
            _refresh(sources, claims, base, http, now or datetime.now(UTC))
    elif claims is not None:
        _read_named_lists(sources, claims, base, http)
    return sources


def _refresh(sources: Sources, claims: dict[str, Any], base: str | None, http: httpx.Client, now: datetime) -> None:
    """Each given status list the verified credential names that is older than the registry lets anyone keep it
    (registry.credentials.freshness) is set aside for the current one, fetched from its own URL if that is under
    ``base``, the registry whose keys verified the credential; if it cannot be had, the list's status is unknown,
    with how old the given one is. A saved list is the holder's snapshot: a revocation since then is not in it."""
    named = {entry.get("statusListCredential") for entry in status_entries(claims)}
    for url, given in list(sources.status_lists.items()):
        # Only a list the registry's keys signed says truly when it was signed and how long it may be kept; any other
        # is refused by the status step whatever its age (registry.credentials.offline).
        given_claims = signed_claims(given, sources.jwks) if sources.jwks is not None else None
        if url not in named or given_claims is None or not freshness.stale(given_claims, now):
            continue
        del sources.status_lists[url]
        signed = freshness.signed_at(given_claims)
        old = freshness.duration(now - signed) if signed is not None else _("an unknown time")
        why: str
        if base is None or not under_registry(url, base):
            why = _(
                "{url} is not under {base}, the registry whose keys verified the credential",
                url=url,
                base=base or _("a registry"),
            )
        else:
            _read_lists(sources, [url], http)
            if url in sources.status_lists:
                continue
            why = sources.unreadable.get(url) or _("the registry did not answer with that list")
        sources.unreadable[url] = _(
            "the status list given for {url} was signed {old} ago, longer than its ttl ({ttl}) allows it to be kept, "
            "and the current one could not be had: {why}",
            url=url,
            old=old,
            ttl=freshness.duration(freshness.kept_for(given_claims)),
            why=why,
        )


def _trusted_keys(sources: Sources, token: str, given: str, http: httpx.Client, *, offline: bool) -> str | None:
    """The keys of a credential naming a trusted registry, given with a ``--jwks`` FILE: whoever saved a file chose its
    keys (the applicant's own registry may call itself the trusted one), so online the registry's own JWKS is fetched
    and used, the file's keys that verify the credential held against it; offline the file is all there is, and the
    signature step says it is the verifier's own saved copy. Where the keys came from, or None (``unreadable``)."""
    registry = issuer_registry(token) or ""
    saved, problem = _read_jwks(given, http)
    if saved is None:
        sources.unreadable["jwks"] = problem
        return None
    if offline:
        sources.jwks = saved
        sources.keys_note = _(
            "keys from {source}: your own saved copy of the keys of {registry}, as trustworthy as whoever saved it",
            source=given,
            registry=registry,
        )
        return given
    published, problem = _read_jwks(registry + JWKS_PATH, http)
    if published is None:
        sources.unreadable["jwks"] = _(
            "JWKS {source} is a file, and the keys of {registry}, which you trust, could not be fetched to hold it "
            "against: {reason} (with --offline the file is taken as your own saved copy of its keys)",
            source=given,
            registry=registry,
            reason=problem,
        )
        return None
    sources.jwks = published
    theirs = [_public(key) for key in _keys(published)]
    offered = [key for key in _keys(saved) if signed_claims(token, {"keys": [key]}) is not None]
    foreign = [str(key.get("kid")) for key in offered if _public(key) not in theirs]
    if foreign:
        sources.keys_note = _(
            "JWKS {source} offers key {kid}, which {registry} does not publish: checked against the keys it does",
            source=given,
            kid=foreign[0],
            registry=registry,
        )
    return registry + JWKS_PATH


def _keys(jwks: dict[str, Any]) -> list[dict[str, Any]]:
    keys = jwks.get("keys")
    return [key for key in keys if isinstance(key, dict)] if isinstance(keys, list) else []


def _public(key: dict[str, Any]) -> dict[str, Any]:
    """What makes a JWK the key it is: its type and public parameters (not its kid or other metadata)."""
    return {name: key.get(name) for name in ("kty", "crv", "x", "y", "n", "e")}


def _read_jwks(source: str, http: httpx.Client) -> tuple[dict[str, Any] | None, str]:
    text, problem = read(source, http)
    if text is None:
        return None, problem or _("JWKS {source} cannot be read", source=source)
    try:
        jwks = json.loads(text)
    except ValueError:
        return None, _("JWKS {source} is not JSON", source=source)
    return (jwks, "") if isinstance(jwks, dict) else (None, _("JWKS {source} is not a JSON object", source=source))


def _list_base(jwks_source: str, claims: dict[str, Any]) -> str | None:
    """The base URL status lists may be fetched from: the registry whose JWKS verified the credential — the JWKS URL
    less /.well-known/jwks.json (else its origin) — or, for a JWKS file, the registry the verified ``iss`` names."""
    if not is_url(jwks_source):
        return _registry_of(claims.get("iss"))
    if jwks_source.endswith(JWKS_PATH):
        return jwks_source.removesuffix(JWKS_PATH)
    parts = urlsplit(jwks_source)
    return f"{parts.scheme}://{parts.netloc}"


def _read_named_lists(sources: Sources, claims: dict[str, Any], base: str | None, http: httpx.Client) -> None:
    """The status lists a verified credential names, each fetched only if it is one a credential of its registry
    can name: at most MOST_STATUS_ENTRIES of them, under ``base``."""
    entries = status_entries(claims)
    named = [entry.get("statusListCredential") for entry in entries]
    urls = list(dict.fromkeys(url for url in named if isinstance(url, str) and is_url(url)))
    if len(entries) > MOST_STATUS_ENTRIES:
        for url in urls:
            sources.unreadable[url] = _(
                "the credential names {count} status entries, and one of this registry names at most {most}: none "
                "was fetched",
                count=len(entries),
                most=MOST_STATUS_ENTRIES,
            )
        return
    for url in urls:
        if base is None or not under_registry(url, base):
            sources.unreadable[url] = _(
                "status list {url} is not under {base}, the registry whose keys verified the credential, so it was "
                "not fetched: give --status-list FILE|URL if you trust it",
                url=url,
                base=base or _("a registry"),
            )
        else:
            _read_lists(sources, [url], http)


def _read_lists(sources: Sources, given: list[str], http: httpx.Client) -> None:
    for source in given:
        text, problem = read(source, http)
        list_id = _claims(text).get("id") if text is not None else None
        if isinstance(list_id, str) and text is not None:
            sources.status_lists[list_id] = text.strip()
        else:
            sources.unreadable[source] = problem or _("status list {source} is not a signed status list", source=source)


def read(source: str, http: httpx.Client) -> tuple[str | None, str | None]:
    """A file's or URL's text, or None with a one-line reason (a message, said in the reader's language)."""
    what = _("status list") if "/status-lists/" in source else "JWKS" if "jwks" in source.lower() else _("input")
    if not is_url(source):
        try:
            with open(source, encoding="utf-8") as handle:
                return handle.read(), None
        except (OSError, ValueError) as exc:
            return None, _("{what} {source} cannot be read: {reason}", what=what, source=source, reason=_why(exc))
    try:
        response = http.get(source)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # an address httpx cannot parse is no HTTPError
        return None, _(
            "{what} {source} could not be fetched: {reason}", what=what, source=source, reason=http_reason(exc)
        )
    if response.status_code != 200:
        reason = status_reason(response.status_code)
        return None, _("{what} {source} could not be fetched: {reason}", what=what, source=source, reason=reason)
    return response.text, None


def _why(error: OSError | ValueError) -> str:
    """Why a file could not be read: the system's reason (registry.os_reasons), or that it is not UTF-8 text."""
    if isinstance(error, OSError):
        return os_reason(error)
    if isinstance(error, UnicodeDecodeError):
        return _("not UTF-8 text")
    return _one_line(error)


def load(source: str) -> tuple[str | None, str | None]:
    """The credential itself, from a file or a URL."""
    with httpx.Client(timeout=FETCH_SECONDS, follow_redirects=False) as http:
        return read(source, http)


def check(
    token: str, *, jwks: str | None, status_lists: list[str], offline: bool = False, trusted: list[str] | None = None
) -> Report:
    """The whole check as ``registry verify-credential`` runs it; ``offline``: no request leaves the machine."""
    transport = httpx.MockTransport(_refuse) if offline else None
    with httpx.Client(timeout=FETCH_SECONDS, follow_redirects=False, transport=transport) as http:
        sources = gather(token, jwks=jwks, status_lists=status_lists, http=http, trusted=trusted, offline=offline)
    report = verify_credential(
        token, jwks=sources.jwks, status_lists=sources.status_lists, unreadable=sources.unreadable
    )
    for step in report.steps:
        if step.name == "signature" and sources.keys_note is not None:
            step.detail = _("{detail} ({note})", detail=step.detail, note=sources.keys_note)
    return report


def described(token: str) -> str | None:
    """What the credential says it is — number, holder, achievement and level, issuer and its registry — unchecked,
    for the reader to hold the steps' verdict against (a valid credential of someone else, or from another registry,
    is still not the one they were shown)."""
    claims = _claims(token)
    subject, issuer = claims.get("credentialSubject"), claims.get("issuer")
    if not isinstance(subject, dict):
        return None
    achievement, level = subject.get("achievement"), subject.get("level")
    parts = (
        subject.get("certificateNumber"),
        subject.get("name"),
        " ".join(
            str(part)
            for part in (
                achievement.get("name") if isinstance(achievement, dict) else None,
                level.get("nameZh") if isinstance(level, dict) else None,
            )
            if isinstance(part, str)
        ),
        issuer.get("name") if isinstance(issuer, dict) else None,
        issuer_registry(token),
    )
    shown = [_printable(part)[:120] for part in parts if isinstance(part, str) and part.strip()]
    return " · ".join(shown) if shown else None


def _printable(text: str) -> str:
    """Unverified text as one line a terminal shows as written: controls, bidi overrides and other invisible
    characters (Unicode category C) become U+FFFD, so a claim cannot move the cursor, reorder what follows or hide."""
    return " ".join("".join("\ufffd" if unicodedata.category(char).startswith("C") else char for char in text).split())


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(_("not fetched: --offline"), request=request)


def _claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
