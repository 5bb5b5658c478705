"""The holder's web pages (``/holder``) and the share links they hand out (``/s/{token}``): server-rendered, and
they work without JavaScript.

Sessions are cookies holding the holder token (HttpOnly, SameSite=Strict, Secure when the public base URL is https,
as short-lived as the token). Every POST is checked twice against cross-site requests: an ``Origin`` (or, failing
that, ``Referer``) naming another site is refused, and the form's ``csrf`` field must equal the CSRF cookie
(double-submit; the cookie is renewed at sign-in). Either failure answers 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import ContextDep, IdentityProviderDep, Lang, SessionDep, VerifierDep
from api.documents import certificate_pdf_response, credential_response
from api.head import HeadOnly
from api.holder_text import TEXT, form_error, purpose_words, sentences, share_form_errors
from api.limits import client_address
from api.routes.pages import SECURITY_HEADERS, result_page, templates, verdict_words
from api.routes.pages import TEXT as PAGE_TEXT
from api.shown_paths import shown_path
from registry.auth import tokens
from registry.auth.principals import Principal
from registry.auth.scopes import Role
from registry.certificates import numbering, records
from registry.clock import CHINA_STANDARD_TIME
from registry.config import Environment, Settings
from registry.context import RegistryContext
from registry.errors import (
    Gone,
    NotFound,
    RegistryError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
    WrongClaimCode,
)
from registry.holder_access import scope, share_links, sign_in, standing
from registry.holder_access.schemas import ExternalSessionCreate, HolderSession, HolderSessionCreate, ShareLinkCreate
from registry.i18n import _, translate
from registry.recognition.schemas import Purpose
from registry.verification import visits
from registry.verification.schemas import Verification
from registry.verification.verifier import Verifier
from registry.verification.visits import Visit

router = APIRouter(tags=["holder-pages"])

SESSION_COOKIE = "tr_holder"
CSRF_COOKIE = "tr_holder_csrf"
COOKIE_PATH = "/holder"
SESSION_SECONDS = 15 * 60  # no longer than the holder token inside it
# "same-origin", not the verification page's "no-referrer": under no-referrer a browser sends ``Origin: null`` with a
# form, which the origin check must refuse. The holder's URLs carry no secret; /s/{token} keeps "no-referrer".
_HOLDER_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
# What the pages answer besides 200 (api/contract.py adds 404, 422 and 503 where they apply).
_REFUSED: dict[int | str, dict[str, Any]] = {403: {"description": "a form without its CSRF token or from elsewhere"}}
_SIGN_IN = {303: {"description": "signed in: on to /holder"}, 401: {"description": "no match"}} | _REFUSED
_SIGNED_IN_ONLY: dict[int | str, dict[str, Any]] = {401: {"description": "not signed in"}}
_DOCUMENT = _SIGNED_IN_ONLY | {403: {"description": "the body has no active key"}, 409: {"description": "not vouched"}}
# Form fields take any length (the body cap bounds them): the schema the API uses refuses what does not fit, and the
# page says so in its language, where a length check on the form would answer problem+json instead of a page.
FormText = Annotated[str, Form()]


def _secure(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://") or settings.env is Environment.production


def _set_cookie(response: Response, settings: Settings, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, secure=_secure(settings), httponly=True, samesite="strict"
    )


def _page(request: Request, template: str, *, lang: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A holder page; it hands out a CSRF cookie when the browser has none, and its forms carry the same value."""
    settings: Settings = request.app.state.context.settings
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    other = "en" if lang == "zh" else "zh"
    # A page answering a form switches language to the holder's home: the form's own path answers GET with 405.
    path = request.url.path if request.method == "GET" else "/holder"
    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": TEXT[lang],
            "u": TEXT[other],
            "alt_lang": other,
            "switch_url": f"{shown_path(path)}?lang={other}",  # an ID typed into the URL: not said back
        }
        | {"csrf": csrf, **context},
        status_code=status,
        headers={**SECURITY_HEADERS, **_HOLDER_HEADERS},
    )
    if request.cookies.get(CSRF_COOKIE) != csrf:
        _set_cookie(response, settings, CSRF_COOKIE, csrf, None)
    return response


def _same_origin(request: Request, settings: Settings) -> bool:
    """A browser names the page a form was sent from; it must be this site (as configured, or as the browser
    reached it). No Origin and no Referer (privacy settings) leaves the decision to the CSRF token."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}"
    public = urlsplit(settings.public_base_url)
    allowed = {f"{public.scheme}://{public.netloc}", f"{request.url.scheme}://{request.headers.get('host', '')}"}
    return origin in allowed


async def _form_is_ours(request: Request, csrf: FormText = "") -> bool:
    """Every holder form's first check: False for a cross-site or token-less POST, which then changes nothing."""
    settings: Settings = request.app.state.context.settings
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return _same_origin(request, settings) and bool(cookie) and hmac.compare_digest(cookie.encode(), csrf.encode())


FormIsOurs = Annotated[bool, Depends(_form_is_ours)]


def _forbidden_page(request: Request, lang: str) -> HTMLResponse:
    return _page(request, "holder/message.html", lang=lang, status=403, kind="forbidden")


def _problem_page(request: Request, lang: str, problem: RegistryError) -> HTMLResponse:
    """A domain error as a holder page: its title and detail in the page's language, then in the other."""
    said = {code: (translate(problem.title, code), translate(problem.detail, code)) for code in ("zh", "en")}
    response = _page(request, "holder/message.html", lang=lang, status=problem.status, kind="problem", said=said)
    response.headers.update(problem.headers())
    return response


async def _signed_in(request: Request, ctx: RegistryContext, session: AsyncSession) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = await tokens.authenticate(ctx, session, token)
    except Unauthenticated:
        return None
    return principal if principal.role is Role.holder else None


def _signed_in_redirect(settings: Settings, opened: HolderSession, lang: str) -> Response:
    response = RedirectResponse(f"/holder?lang={lang}", status_code=303)
    _set_cookie(response, settings, SESSION_COOKIE, opened.access_token, min(SESSION_SECONDS, opened.expires_in))
    # A fresh CSRF value after sign-in: one planted before it (session fixation's cousin) is worth nothing after.
    _set_cookie(response, settings, CSRF_COOKIE, secrets.token_urlsafe(24), None)
    return response


@router.get("/holder", response_class=HTMLResponse, operation_id="holder-pages-home")
async def home(
    request: Request, lang: Lang, context: ContextDep, session: SessionDep, verifier: VerifierDep
) -> HTMLResponse:
    """Signed in: my certificates, share links and who looked. Otherwise: the sign-in form."""
    principal = await _signed_in(request, context, session)
    if principal is None:
        return _sign_in_page(request, lang=lang)
    return await _dashboard(request, context, session, verifier, principal, lang=lang)


def _sign_in_page(
    request: Request, *, lang: str, status: int = 200, error: str | None = None, failed: str = "claim_code"
) -> HTMLResponse:
    """The sign-in forms; ``failed`` names the one the error is about ("claim_code" or "idp"), shown beside it."""
    idp = request.app.state.identity_provider is not None
    response = _page(request, "holder/sign_in.html", lang=lang, status=status, error=error, failed=failed, idp=idp)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


async def _dashboard(
    request: Request,
    ctx: RegistryContext,
    session: AsyncSession,
    verifier: Verifier,
    principal: Principal,
    *,
    lang: str,
    **extra: Any,
) -> HTMLResponse:
    loaded = await records.records_for_holder(session, principal=principal)
    certificates = [records.to_public(ctx, record) for record in loaded]
    # What each one says to whoever checks it today (expired, or unknown when the registry cannot vouch for it), not
    # its stored status, which stays "active" past its valid_until: the verifier's answer, with its date and reason.
    answers = await standing.standings(verifier, session, loaded)
    standings = {
        record.certificate.number: _standing_words(answer, lang) for record, answer in zip(loaded, answers, strict=True)
    }
    links = await share_links.list_for_holder(session, principal=principal)
    looked = await visits.list_public(session, principal=principal)
    # A claim-code session reads one body's certificates: say why the others are missing, in both languages.
    reach = [translate(scope.other_bodies_notice(), code) for code in (lang, "en" if lang == "zh" else "zh")]
    return _page(
        request,
        "holder/home.html",
        lang=lang,
        certificates=certificates,
        standings=standings,
        links=links,
        visits=looked,
        purposes=[purpose.value for purpose in Purpose],
        purpose_words=lambda purpose: purpose_words(lang, purpose),
        cst=CHINA_STANDARD_TIME,
        grouped=numbering.group_canonical,
        scope_note=reach if principal.holder_issuer_id is not None else None,
        **extra,
    )


def _standing_words(answer: Verification, lang: str) -> dict[str, Any]:
    """A certificate's standing as its card says it, in the verification page's words: the result, then what it
    means, since when and why, as sentences (not "…不再有效。 · 撤销日期…")."""
    words = verdict_words(answer, lang)
    why = f"{PAGE_TEXT[lang]['reason']}{'：' if lang == 'zh' else ': '}{words.reason}" if words.reason else None
    return {"result": answer.result.value, "said": sentences(lang, words.meaning, words.changed, why)}


@router.post(
    "/holder/sign-in",
    response_class=HTMLResponse,
    operation_id="holder-pages-sign-in",
    responses=_SIGN_IN | {429: {"description": "locked after wrong claim codes"}},
)
async def sign_in_with_claim_code(
    request: Request,
    lang: Lang,
    ours: FormIsOurs,
    context: ContextDep,
    session: SessionDep,
    id_type: FormText = "",
    id_number: FormText = "",
    claim_code: FormText = "",
) -> Response:
    if not ours:
        return _forbidden_page(request, lang)
    text = TEXT[lang]
    form = {"id_type": id_type, "id_number": id_number.strip(), "claim_code": claim_code.strip()}
    try:
        body = HolderSessionCreate.model_validate(form)
    except ValidationError as problem:
        return _sign_in_page(request, lang=lang, status=422, error=text["invalid_form"] + form_error(problem, lang))
    try:
        opened = await sign_in.with_claim_code(
            context, session, request=body, client_address=client_address(request.scope)
        )
    except TooManyRequests as locked:
        response = _sign_in_page(request, lang=lang, status=429, error=text["locked"])
        response.headers.update(locked.headers())  # Retry-After, as the API's 429 says it
        return response
    if isinstance(opened, WrongClaimCode):
        # Answered, not raised, as in the API: the strike this attempt recorded is committed with the request.
        return _sign_in_page(request, lang=lang, status=401, error=text["sign_in_failed"])
    return _signed_in_redirect(context.settings, opened, lang)


@router.post(
    "/holder/sign-in/external",
    response_class=HTMLResponse,
    operation_id="holder-pages-sign-in-external",
    responses=_SIGN_IN | {404: {"description": "no identity provider configured"}},
)
async def sign_in_with_identity_provider(
    request: Request,
    lang: Lang,
    ours: FormIsOurs,
    context: ContextDep,
    session: SessionDep,
    provider: IdentityProviderDep,
    id_token: FormText = "",
) -> Response:
    if not ours:
        return _forbidden_page(request, lang)
    text = TEXT[lang]
    if provider is None:
        return _sign_in_page(request, lang=lang, status=404, error=text["idp_failed"], failed="idp")
    try:
        body = ExternalSessionCreate.model_validate({"id_token": id_token.strip()})
    except ValidationError as problem:
        error = text["invalid_form"] + form_error(problem, lang)
        return _sign_in_page(request, lang=lang, status=422, error=error, failed="idp")
    try:
        opened = await sign_in.with_identity_provider(context, session, provider=provider, id_token=body.id_token)
    except Unauthenticated:
        return _sign_in_page(request, lang=lang, status=401, error=text["idp_failed"], failed="idp")
    except ServiceUnavailable as down:  # the provider out of reach: not the holder's token at fault
        response = _sign_in_page(request, lang=lang, status=503, error=text["idp_unreachable"], failed="idp")
        response.headers.update(down.headers())
        return response
    return _signed_in_redirect(context.settings, opened, lang)


@router.post(
    "/holder/sign-out",
    response_class=HTMLResponse,
    operation_id="holder-pages-sign-out",
    responses=_REFUSED | {303: {"description": "signed out: on to /holder"}},
)
async def sign_out(
    request: Request, lang: Lang, ours: FormIsOurs, context: ContextDep, session: SessionDep
) -> Response:
    if not ours:
        return _forbidden_page(request, lang)
    signed_in = await _signed_in(request, context, session)
    if signed_in is not None:  # ended on the server too: a copy of the cookie no longer opens the pages
        await tokens.end_session(session, signed_in)
    response = RedirectResponse(f"/holder?lang={lang}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


async def _holder(request: Request, context: ContextDep, session: SessionDep) -> Principal:
    principal = await _signed_in(request, context, session)
    if principal is None:
        raise Unauthenticated(_("sign in at /holder first"))
    return principal


CookieHolder = Annotated[Principal, Depends(_holder)]


@router.get(
    "/holder/certificates/{number}.pdf",
    operation_id="holder-pages-pdf",
    response_class=Response,
    responses=_DOCUMENT | {200: {"content": {"application/pdf": {}}}},
)
async def certificate_pdf(
    number: str,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    holder: CookieHolder,
    head: HeadOnly,
) -> Response:
    return await certificate_pdf_response(context, session, verifier, principal=holder, number=number, head=head)


@router.get(
    "/holder/certificates/{number}/credential.jwt",
    operation_id="holder-pages-credential",
    response_class=Response,
    responses=_DOCUMENT | {200: {"content": {"application/vc+jwt": {}}}},
)
async def certificate_credential(
    number: str,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    holder: CookieHolder,
    head: HeadOnly,
) -> Response:
    return await credential_response(
        context, session, verifier, principal=holder, number=number, filename=True, head=head
    )


@router.post(
    "/holder/share-links",
    response_class=HTMLResponse,
    operation_id="holder-pages-share-links-create",
    responses=_SIGNED_IN_ONLY | _REFUSED,
)
async def create_share_link(
    request: Request,
    lang: Lang,
    ours: FormIsOurs,
    context: ContextDep,
    session: SessionDep,
    verifier: VerifierDep,
    number: FormText = "",
    purpose: FormText = "",
    purpose_text: FormText = "",
    expires_in_days: FormText = "",
) -> Response:
    if not ours:
        return _forbidden_page(request, lang)
    principal = await _signed_in(request, context, session)
    if principal is None:
        return _sign_in_page(request, lang=lang, status=401)
    form: dict[str, Any] = {"number": number, "purpose": purpose, "purpose_text": purpose_text.strip() or None}
    if expires_in_days.strip():  # blank: the schema's default
        form["expires_in_days"] = _days(expires_in_days)
    try:
        body = ShareLinkCreate.model_validate(form)
        created = await share_links.create(context.settings, session, principal=principal, request=body)
    except (ValidationError, RegistryError) as problem:
        typed = {"number": number, "purpose": purpose, "purpose_text": purpose_text, "days": expires_in_days}
        errors = share_form_errors(problem, lang)
        return await _dashboard(
            request, context, session, verifier, principal, lang=lang, errors=errors, typed=typed, status=422
        )
    return await _dashboard(request, context, session, verifier, principal, lang=lang, new_link=created)


def _days(typed: str) -> int | str:
    """The form's days for the API's schema: ASCII digits (what a number field sends) as a number; anything else
    ("３", "٣", "+5", "seven") as typed, so the schema takes or refuses it as it would from the API."""
    days = typed.strip()
    if days.isascii() and days.isdigit():
        try:
            return int(days)
        except ValueError:  # more digits than int() converts: the schema refuses the text instead
            return typed
    return typed


@router.post(
    "/holder/share-links/{link_id}/withdraw",
    response_class=HTMLResponse,
    operation_id="holder-pages-share-links-withdraw",
    responses={303: {"description": "withdrawn: back to /holder"}} | _SIGNED_IN_ONLY | _REFUSED,
)
async def withdraw_share_link(
    link_id: str, request: Request, lang: Lang, ours: FormIsOurs, context: ContextDep, session: SessionDep
) -> Response:
    if not ours:
        return _forbidden_page(request, lang)
    principal = await _signed_in(request, context, session)
    if principal is None:
        return _sign_in_page(request, lang=lang, status=401)
    try:
        await share_links.withdraw(session, principal=principal, link_id=_link_id(link_id))
    except NotFound as missing:
        return _problem_page(request, lang, missing)
    return RedirectResponse(f"/holder?lang={lang}#links", status_code=303)


def _link_id(text: str) -> uuid.UUID:
    """A share link's id from the form's path; text that is no UUID names no link of the holder's either."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(_("no such share link of yours")) from None


def _gone_page(request: Request, lang: str, status: int) -> HTMLResponse:
    response = _page(request, "holder/message.html", lang=lang, status=status, kind="gone")
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL carries the link's token
    return response


@router.get(
    "/s/{token}",
    response_class=HTMLResponse,
    operation_id="holder-pages-share-link-open",
    responses={410: {"description": "the link expired or was withdrawn"}},
)
async def open_share_link(
    token: str, request: Request, lang: Lang, session: SessionDep, verifier: VerifierDep
) -> HTMLResponse:
    """A holder's share link: the certificate's verification page with the purpose shown — or, once the link has
    expired or been withdrawn, a page saying so (410) and nothing of the certificate."""
    try:
        opened = await share_links.open_link(session, token=token)
    except Gone:
        return _gone_page(request, lang, 410)
    except NotFound:
        return _gone_page(request, lang, 404)
    label = opened.purpose.value + (f": {opened.purpose_text}" if opened.purpose_text else "")
    visit = Visit("share_link", purpose=label)
    try:
        verification = await verifier.by_token(session, token=opened.verify_token, channel="share_link", visit=visit)
    except NotFound:
        return _gone_page(request, lang, 404)
    other = "en" if lang == "zh" else "zh"
    shared_for = [TEXT[code]["shared_for"].format(purpose=purpose_words(code, label)) for code in (lang, other)]
    return result_page(request, verification, lang=lang, template="holder/shared.html", shared_for=shared_for)
