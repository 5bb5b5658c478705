"""Offline verification of a signed credential against a JWKS and status lists — no database, no trust in the network.

Every step reports pass/fail/unknown; the credential is valid only when every step passes. A status that cannot be
read is 'unknown', and unknown fails: this never says valid without knowing — nor from a status list past its
``validUntil``. Both status shapes are read: the single two-bit ``message`` entry (0 valid, 1 suspended, 2 or 3
revoked) and the older pair of one-bit ``revocation`` and ``suspension`` entries. Both key names are read too: a
key's URL (``{issuer}/keys/{kid}``) and, as older credentials name it, its short kid; and every algorithm a body's key
may have (``Ed25519`` — ``EdDSA`` as older credentials say — or ``ES256``), never another than its key's.

A signature that verifies is not enough, since whoever publishes the JWKS chooses the key: the credential and its
lists are held to the standards too. ``issuer`` (or ``issuer.id``) is the JWT's ``iss`` (VC-JOSE-COSE); ``exp``,
``iat`` and ``nbf`` are JSON numbers (RFC 7519 NumericDate); ``validFrom`` and ``validUntil`` are dateTimeStamps, a
time with its zone (VC 2.0 §4.9); a status list holds at least 131,072 entries of the entry's ``statusSize`` and has
the entry's ``statusPurpose``, or its status cannot be known (Bitstring Status List v1.0 §3.2).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from registry.auth.jwt_words import shape_refusal
from registry.auth.numeric_dates import TIME_CLAIMS, is_numeric_date
from registry.certificates.status_lists import decode
from registry.credentials import freshness, message_list
from registry.credentials.credential import CREDENTIAL_TYPE
from registry.credentials.message_list import status_value
from registry.credentials.refusals import jws_reason, undecodable
from registry.credentials.report import STEPS as STEPS
from registry.credentials.report import Report as Report
from registry.i18n import Listing, _
from registry.keys import jws, signers

_HEX_STATUS = re.compile(r"0[xX][0-9a-fA-F]+")  # ASCII only: "0x+1", "0x 1", "0x0_1" and "0x１" are not hex strings
_DECIMAL = re.compile(r"[0-9]+")  # "5_0", "+5", " 5" and "٥" are not the index "50", "5" or "5"
MOST_STATUS_BITS = 8  # statusSize: the largest this verifier reads (the registry's own lists use 1 and 2)
# The most bytes a status list may inflate to: 128 times the registry's own (131,072 two-bit entries: 32 KiB).
MOST_LIST_BYTES = 4 * 1024 * 1024
MINIMUM_ENTRIES = 131_072  # Bitstring Status List v1.0 §3.2: minimumNumberOfEntries, else STATUS_LIST_LENGTH_ERROR
# XML Schema's dateTimeStamp, which VC 2.0 asks of validFrom and validUntil: a date, a time and a time zone. ASCII
# digits only; Python's fromisoformat alone also takes a bare date, a time without a zone, a space for the T.
_DATE_TIME_STAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date_time_stamp(value: Any) -> datetime | None:
    """A credential's or status list's ``validFrom`` or ``validUntil``; None unless a dateTimeStamp (VC 2.0 §4.9)."""
    return _parse_time(value) if isinstance(value, str) and _DATE_TIME_STAMP.fullmatch(value) else None


def _numeric_date(value: object) -> datetime | None:
    """The moment a NumericDate names; None for anything else: text (even ``"1796408910"``), a boolean, NaN, or a
    number past what a calendar holds (10**20)."""
    if not is_numeric_date(value) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _time_claims_problem(claims: dict[str, Any]) -> str | None:
    """Why a time claim present (exp, iat, nbf) is no NumericDate (RFC 7519 §2), if one is not."""
    for name in TIME_CLAIMS:
        if name in claims and _numeric_date(claims[name]) is None:
            return _(
                "{name} {value!r:.40} is not a NumericDate (RFC 7519: a JSON number of seconds, in range)",
                name=name,
                value=claims[name],
            )
    return None


def _issuer_id(claims: dict[str, Any]) -> str | None:
    """The credential's ``issuer``: the string itself, or the object's ``id``."""
    issuer = claims.get("issuer")
    named = issuer.get("id") if isinstance(issuer, dict) else issuer
    return named if isinstance(named, str) else None


def _find_key(jwks: dict[str, Any], kid: str) -> dict[str, Any] | None:
    """The JWK published under ``kid``. A key URL (``{issuer}/keys/{kid}``, in credentials signed since keys have
    URLs) that a JWKS saved before then lacks is looked up under its short kid."""
    published = [key for key in jwks.get("keys", []) if isinstance(key, dict)]
    for wanted in (kid, kid.rsplit("/keys/", 1)[-1] if _is_key_url(kid) else None):
        for key in published:
            if wanted is not None and key.get("kid") == wanted:
                return key
    return None


def _is_key_url(kid: str) -> bool:
    return kid.startswith(("https://", "http://")) and "/keys/" in kid


def _verify_jws(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    """The claims and JWK of a JWS whose signature verifies with the key its ``kid`` names, under an algorithm that
    key signs with: ``Ed25519`` (or ``EdDSA``, as credentials issued before RFC 9864 say) for an Ed25519 key, ``ES256``
    for a P-256 key — a header naming another algorithm than its key's is refused."""
    try:
        header = jws.unverified_header(token)
    except ValueError as exc:
        return None, None, _("not a compact JWS: {reason}", reason=jws_reason(exc))
    kid, alg = header.get("kid"), header.get("alg")
    jwk = _find_key(jwks, kid) if isinstance(kid, str) else None
    if jwk is None:
        return None, None, _("key {kid!r} is not in the JWKS", kid=kid)
    check = signers.check_for_jwk(jwk)
    if check is None or alg not in check.algorithm.accepts:
        return None, jwk, _("algorithm {alg!r} is not accepted for key {kid}", alg=alg, kid=kid)
    try:
        claims = jws.decode(token, check)
    except ValueError as exc:
        return None, jwk, _("signature does not verify: {reason}", reason=jws_reason(exc))
    # A key URL speaks only for the issuer it is published under.
    if isinstance(kid, str) and _is_key_url(kid) and not kid.startswith(f"{claims.get('iss')}/keys/"):
        return None, jwk, _("key {kid} is not published under the issuer {iss!r}", kid=kid, iss=claims.get("iss"))
    return claims, jwk, _("{alg} signature by {kid} verifies", alg=alg, kid=kid)


def signed_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any] | None:
    """A credential's claims if its signature verifies against ``jwks`` (the key its kid names), else None."""
    claims, _, _ = _verify_jws(token.strip(), jwks)
    return claims


def verify_credential(
    token: str,
    *,
    jwks: dict[str, Any] | None,
    status_lists: dict[str, str],
    now: datetime | None = None,
    unreadable: dict[str, str] | None = None,
) -> Report:
    """``status_lists`` maps a status-list URL to its signed BitstringStatusListCredential (compact JWS).
    ``jwks`` None: the key set could not be had; ``unreadable`` says why for it (key ``"jwks"``) and for each status
    list URL that could not be had — the step then reports 'unknown' with that reason.

    The steps run in order and the first that does not pass ends the check: format → signature → key → dates →
    status."""
    now = now or datetime.now(UTC)
    report = Report()
    token = token.strip()
    unreadable = unreadable or {}
    if not _format_step(report, token):
        return report
    if jwks is None:
        report.add("signature", "unknown", unreadable.get("jwks", _("no JWKS to check the signature against")))
        return report
    claims, jwk, detail = _verify_jws(token, jwks)
    if claims is None or jwk is None:
        report.add("signature", "fail", detail)
        return report
    report.add("signature", "pass", detail)
    issuer = claims.get("iss")
    issuer_code = issuer.rsplit("/v1/issuers/", 1)[-1] if isinstance(issuer, str) and "/v1/issuers/" in issuer else None
    if _key_step(report, claims, jwk, issuer_code=issuer_code, issuer=issuer) and _dates_step(report, claims, now):
        lists = _Lists(status_lists, unreadable)
        _status_step(report, claims, jwks, lists, issuer=issuer, issuer_code=issuer_code, now=now)
    return report


def _format_step(report: Report, token: str) -> bool:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        return report.add("format", "fail", _("not a compact JWS: {reason}", reason=shape_refusal(exc)))
    if header.get("typ") != CREDENTIAL_TYPE:
        said = _("typ is {typ!r}, expected {expected!r}", typ=header.get("typ"), expected=CREDENTIAL_TYPE)
        return report.add("format", "fail", said)
    said = _("compact JWS, typ {typ}, kid {kid}", typ=CREDENTIAL_TYPE, kid=header.get("kid"))
    return report.add("format", "pass", said)


def _key_step(
    report: Report, claims: dict[str, Any], jwk: dict[str, Any], *, issuer_code: str | None, issuer: Any
) -> bool:
    if _issuer_id(claims) != issuer:
        # VC-JOSE-COSE: iss must match issuer (a string) or issuer.id; the key speaks for iss only.
        said = _(
            "issuer {named!r:.120} does not match iss {iss!r:.120} (VC-JOSE-COSE)", named=_issuer_id(claims), iss=issuer
        )
        return report.add("key", "fail", said)
    if not _signs_for(jwk, issuer_code):
        said = _("key {kid} is not a certificate key of the issuer {iss!r}", kid=jwk.get("kid"), iss=issuer)
        return report.add("key", "fail", said)
    problem = _time_claims_problem(claims)
    if problem is not None or "iat" not in claims:
        return report.add("key", "fail", problem or _("no iat: when it was signed, and so by which key, is unknown"))
    issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
    key_from, key_until = _parse_time(jwk.get("valid_from")), _parse_time(jwk.get("valid_until"))
    compromised = _parse_time(jwk.get("compromised_from"))
    if compromised is not None:
        # The signing time is the signer's own claim: whoever holds a stolen key can backdate it. Nothing signed
        # by a compromised key counts offline; the registry re-issues credentials from a sound key on request.
        said = _("key {kid} is compromised (from {since})", kid=jwk["kid"], since=compromised.isoformat())
        return report.add("key", "fail", said)
    signed = issued_at.isoformat()
    if key_from is None or issued_at < key_from.replace(microsecond=0) or (key_until and issued_at > key_until):
        return report.add("key", "fail", _("signed {signed}, outside the key's validity window", signed=signed))
    return report.add("key", "pass", _("signed {signed} within the key's validity window", signed=signed))


def _dates_step(report: Report, claims: dict[str, Any], now: datetime) -> bool:
    valid_from, valid_until = _date_time_stamp(claims.get("validFrom")), _date_time_stamp(claims.get("validUntil"))
    if valid_from is None:
        said = _(
            "validFrom {value!r:.40} is missing or not a date-time with a time zone (VC 2.0)",
            value=claims.get("validFrom"),
        )
        return report.add("dates", "fail", said)
    if "validUntil" in claims and valid_until is None:
        said = _(
            "validUntil {value!r:.40} is not a date-time with a time zone (VC 2.0)", value=claims.get("validUntil")
        )
        return report.add("dates", "fail", said)
    # validUntil names the last second that is still valid (23:59:59 China Standard Time of the last valid day, as
    # online verification counts it), so the whole of that second is too.
    now = now.replace(microsecond=0)
    if valid_from > now:
        return report.add("dates", "fail", _("validFrom {since} is in the future", since=valid_from.isoformat()))
    if valid_until is not None and valid_until < now:
        return report.add("dates", "fail", _("expired on {day}", day=valid_until.date().isoformat()))
    # The JOSE layer's own window (RFC 7519), when a signer sets one; the key step saw that both are NumericDates.
    if "nbf" in claims and now.timestamp() < claims["nbf"]:
        return report.add("dates", "fail", _("not valid before its nbf"))
    if "exp" in claims and now.timestamp() >= claims["exp"]:
        return report.add("dates", "fail", _("expired at its exp"))
    since = valid_from.date().isoformat()
    if valid_until is None:
        return report.add("dates", "pass", _("valid from {since}, no expiry", since=since))
    return report.add(
        "dates", "pass", _("valid from {since} until {day}", since=since, day=valid_until.date().isoformat())
    )


@dataclass(frozen=True, slots=True)
class _Lists:
    tokens: dict[str, str]  # status-list URL -> its signed credential
    unreadable: dict[str, str]  # status-list URL -> why it could not be had


def status_entries(claims: dict[str, Any]) -> list[dict[str, Any]]:
    """A credential's status entries, in either shape the registry has signed: one entry (the two-bit ``message``
    list) or, before that, an array of two (``revocation`` and ``suspension``)."""
    status = claims.get("credentialStatus")
    entries = [status] if isinstance(status, dict) else status if isinstance(status, list) else []
    return [entry for entry in entries if isinstance(entry, dict)]


def _status_step(
    report: Report,
    claims: dict[str, Any],
    jwks: dict[str, Any],
    status_lists: _Lists,
    *,
    issuer: Any,
    issuer_code: str | None,
    now: datetime,
) -> bool:
    entries = status_entries(claims)
    if not entries:
        return report.add("status", "unknown", _("the credential names no status list, so its status cannot be known"))
    findings = []
    for entry in entries:
        url, purpose = str(entry.get("statusListCredential")), entry.get("statusPurpose")
        listed = entry.get("statusListIndex")
        if not isinstance(listed, str) or _DECIMAL.fullmatch(listed) is None:  # §2.1: a base-10 integer, as a string
            return report.add("status", "fail", _("a status entry has no usable index"))
        index = int(listed)
        size = entry.get("statusSize", 1)
        problem = _size_problem(entry, size)
        if problem is not None:
            return report.add("status", "fail", problem)
        list_token = status_lists.tokens.get(url)
        if list_token is None:
            why = status_lists.unreadable.get(url)
            why = why or _("status list {url} was not provided or could not be read", url=url)
            return report.add("status", "unknown", why)
        read = _status_bits(
            report, list_token, jwks, url=url, purpose=purpose, issuer=issuer, issuer_code=issuer_code, now=now
        )
        if read is None:
            return False
        bits, list_claims = read
        held = len(bits) * 8 // max(size, 1)
        if held < MINIMUM_ENTRIES:
            too_short = _(
                "status list {url} holds {held:,} entries of {size} bits, fewer than {least:,} "
                "(STATUS_LIST_LENGTH_ERROR)",
                url=url,
                held=held,
                size=size,
                least=MINIMUM_ENTRIES,
            )
            return report.add("status", "unknown", too_short)
        try:
            value = status_value(bits, index, size)
        except IndexError:
            return report.add("status", "unknown", _("status list {url} has no index {index}", url=url, index=index))
        if value:
            return report.add("status", "fail", _flagged(entry, purpose, index, value))
        meaning = _message(entry, value) or _("clear")
        finding = _("{purpose} {index}: {meaning}", purpose=purpose, index=index, meaning=meaning)
        # How old the list read is and until when it counts: a saved one may be out of date (freshness.window).
        findings.append(_("{finding} ({window})", finding=finding, window=freshness.window(list_claims, now)))
    return report.add("status", "pass", Listing(findings))


def _size_problem(entry: dict[str, Any], size: Any) -> str | None:
    """What is wrong with an entry's ``statusSize`` and ``statusMessage``, if anything: the size is a whole number of
    bits from 1 to 8 (JSON ``2``, not ``"2"``, ``2.0`` or ``true``), and a size above 1 comes with a message for every
    value it can hold, each ``status`` a hex string."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MOST_STATUS_BITS:
        return _(
            "a status entry has a statusSize that is not a whole number of bits from 1 to {most}: {size!r:.40} "
            "(Bitstring Status List v1.0 §2.1)",
            most=MOST_STATUS_BITS,
            size=size,
        )
    messages = entry.get("statusMessage")
    if size == 1 and messages is None:
        return None
    if not isinstance(messages, list):
        messages = []
    said = {_status_number(item.get("status")) for item in messages if isinstance(item, dict)}
    if said != set(range(2**size)) or len(messages) != 2**size:
        return _(
            "a status entry of statusSize {size} does not give a statusMessage for each of its {values} values "
            "(Bitstring Status List v1.0 §2.1)",
            size=size,
            values=2**size,
        )
    return None


def _status_number(status: Any) -> int | None:
    """A statusMessage's ``status``, a hex string (§2.1): ``0x0``, ``0x00`` and ``0X0`` alike; else None."""
    if not isinstance(status, str) or _HEX_STATUS.fullmatch(status) is None:
        return None
    return int(status[2:], 16)


# The words this registry's credentials give their status values (registry.credentials.message_list), said in the
# reader's language; another issuer's words are shown as it wrote them.
_MESSAGE_WORDS = {"valid": _("valid"), "suspended": _("suspended"), "revoked": _("revoked")}


def _message(entry: dict[str, Any], value: int) -> str | None:
    """What the credential's own ``statusMessage`` says a value means (the ``message`` purpose), if it says."""
    messages = entry.get("statusMessage")
    for item in messages if isinstance(messages, list) else []:
        if (
            isinstance(item, dict)
            and _status_number(item.get("status")) == value
            and isinstance(item.get("message"), str)
        ):
            return _MESSAGE_WORDS.get(item["message"], str(item["message"]))
    return None


def _flagged(entry: dict[str, Any], purpose: Any, index: int, value: int) -> str:
    if purpose == message_list.PURPOSE:
        said = _message(entry, value) or _("status {value}", value=hex(value))
        return _(
            "message status {value} at index {index}: the certificate is {said}",
            value=hex(value),
            index=index,
            said=said,
        )
    return _(
        "{purpose} bit {index} is set: the certificate is {said}", purpose=purpose, index=index, said=_word(purpose)
    )


def _status_bits(
    report: Report,
    list_token: str,
    jwks: dict[str, Any],
    *,
    url: str,
    purpose: Any,
    issuer: Any,
    issuer_code: str | None,
    now: datetime,
) -> tuple[bytes, dict[str, Any]] | None:
    """The bitstring and claims of a status list that verifies, is the issuer's own and is current; else reported
    unknown."""
    list_claims, list_key, list_detail = _verify_jws(list_token, jwks)
    if list_claims is None:
        report.add("status", "unknown", _("status list {url} does not verify: {reason}", url=url, reason=list_detail))
        return None
    problem = _list_problem(list_claims, list_key, url=url, purpose=purpose, issuer=issuer, issuer_code=issuer_code)
    problem = problem or _list_dates_problem(list_claims, url=url, now=now)
    if problem is not None:
        report.add("status", "unknown", problem)
        return None
    try:
        return decode(list_claims["credentialSubject"]["encodedList"], most=MOST_LIST_BYTES), list_claims
    except (KeyError, TypeError, AttributeError, ValueError, OSError, EOFError, zlib.error) as refused:
        report.add("status", "unknown", undecodable(url, refused, list_claims, most=MOST_LIST_BYTES))
        return None


def _list_problem(
    list_claims: dict[str, Any],
    list_key: dict[str, Any] | None,
    *,
    url: str,
    purpose: Any,
    issuer: Any,
    issuer_code: str | None,
) -> str | None:
    """Why a status list whose signature verifies still says nothing about this entry, if it does not."""
    subject = list_claims.get("credentialSubject")
    list_purpose = subject.get("statusPurpose") if isinstance(subject, dict) else None
    if list_claims.get("id") != url:
        return _("status list {url} is another list: its id is {id!r:.120}", url=url, id=list_claims.get("id"))
    if list_purpose != purpose:
        # Bitstring Status List v1.0 §3.2: a list of another purpose is a STATUS_VERIFICATION_ERROR.
        return _(
            "status list {url} is a {listed!r:.40} list, but the entry's statusPurpose is {purpose!r:.40} "
            "(STATUS_VERIFICATION_ERROR)",
            url=url,
            listed=list_purpose,
            purpose=purpose,
        )
    if _issuer_id(list_claims) != list_claims.get("iss"):
        named = _issuer_id(list_claims)
        return _("status list {url} names the issuer {named!r:.120}, not its iss", url=url, named=named)
    # Only the same body's own, uncompromised key may speak for its certificates' status.
    if (
        list_claims.get("iss") != issuer
        or not _signs_for(list_key, issuer_code)
        or (list_key or {}).get("compromised_from")
    ):
        return _("status list {url} is not signed by the credential's issuer", url=url)
    problem = _time_claims_problem(list_claims)
    return None if problem is None else _("status list {url}: {problem}", url=url, problem=problem)


def _list_dates_problem(list_claims: dict[str, Any], *, url: str, now: datetime) -> str | None:
    """A list says something only within its validFrom .. validUntil, both dateTimeStamps (validFrom optional)."""
    list_from, list_until = (
        _date_time_stamp(list_claims.get("validFrom")),
        _date_time_stamp(list_claims.get("validUntil")),
    )
    if "validUntil" in list_claims and list_until is None:
        return _("status list {url} has a validUntil that is not a date-time with a time zone", url=url)
    if list_until is None or list_until < now:
        return _("status list {url} is out of date; fetch a current one", url=url)
    if "validFrom" in list_claims and list_from is None:
        return _("status list {url} has a validFrom that is not a date-time with a time zone", url=url)
    if list_from is not None and list_from > now:
        since = list_from.isoformat()
        return _("status list {url} is not yet valid (from {since}); fetch a current one", url=url, since=since)
    return None


def _signs_for(jwk: dict[str, Any] | None, issuer_code: str | None) -> bool:
    """A key counts for a credential only if the JWKS names it a certificate key of that very issuer."""
    return (
        jwk is not None
        and issuer_code is not None
        and jwk.get("key_use") == "certificate"
        and jwk.get("issuer_code") == issuer_code
    )


def _word(purpose: Any) -> str:
    return {"revocation": _("revoked (or superseded)"), "suspension": _("suspended")}.get(str(purpose), str(purpose))
