"""Review of holder writes racing the end of their session (review 3): a share link made while the holder signs out,
or while the body revokes the certificate whose claim code opened the session as issued in error, is checked with a
plain read, so on PostgreSQL the ending commits first and the link after it.

Neither ending touches a share link: a sign-out refuses the token, a revocation ends the claim-code sessions of its
chain, and the links a session made before either stay live until they expire or are withdrawn (README, "Share
links"). A link committed just after the ending is therefore what the same link made a moment before it would be — the
serial order "made, then ended" — and what it opens says the certificate's standing as of when it is opened: a
revoked certificate is shown revoked, with its reason. These tests pin that on both databases: nothing makes the ending
wait on PostgreSQL (it finishes while the link waits to commit; on SQLite it waits its turn), no request answers 500,
the token is refused afterwards, and the raced link and one made before the ending open the same page."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.holder_access import share_links
from tests.integration.holder_support import HOLDER_NAME, SignedInHolder, signed_in_holder, table_rows
from tests.integration.holds_support import race
from tests.integration.lifecycle_support import act
from tests.integration.test_holder_pages import csrf_of, holder_at_home

_REVOKED = "证书已被发证机构撤销，不再有效。"
_VALID = "证书真实，当前有效。"


def _share(
    client: httpx.AsyncClient, holder: SignedInHolder, purpose: str = "hiring"
) -> Callable[[], Coroutine[Any, Any, httpx.Response]]:
    async def share() -> httpx.Response:
        body = {"number": holder.certificate["number"], "purpose": purpose}
        return await client.post("/v1/holder/share-links", json=body, headers=holder.headers)

    return share


async def _opened(client: httpx.AsyncClient, link: httpx.Response) -> str:
    assert link.status_code == 201, link.text
    page = await client.get("/s/" + link.json()["url"].rsplit("/", 1)[1])
    assert page.status_code == 200, page.text
    assert HOLDER_NAME in page.text
    return page.text


async def test_a_share_link_made_while_its_certificate_is_revoked_in_error_opens_as_revoked(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Reported: the link's check of the claim-code session (its chain not revoked in error) is a plain read, so a
    revocation as issued in error commits while the link is being made, and the link commits after it. Found
    harmless: the revocation ends the session, not the links it made, so the raced link is what a link made a moment
    before is; both open the certificate as revoked, issued in error, and the session reads nothing more."""
    holder = await signed_in_holder(app, client)
    number = holder.certificate["number"]
    before = await _share(client, holder)()

    async def revoke() -> httpx.Response:
        return await act(client, holder.issuer, number, "revoke", "issued_in_error")

    raced = await race(monkeypatch, share_links, "_own_certificate", _share(client, holder, "title_evaluation"), revoke)
    assert raced.ended.status_code == 200, raced.ended.text
    # PostgreSQL: the revocation commits while the link waits (the reported race: nothing makes it wait, and the link
    # commits after it, or first on a slow machine — the same answers either way); SQLite: it waits its turn.
    assert raced.ended_before_commit is not None
    assert backend == "postgresql" or raced.ended_before_commit is False
    after = await _opened(client, raced.answer)
    earlier = await _opened(client, before)
    for page in (after, earlier):
        assert _REVOKED in page
        assert "误发" in page  # the public reason: issued in error
        assert _VALID not in page
    listed = await client.get("/v1/holder/certificates", headers=holder.headers)
    assert listed.status_code == 401, listed.text
    assert "sign in again" in listed.json()["detail"]
    made = await client.post(
        "/v1/holder/share-links", json={"number": number, "purpose": "hiring"}, headers=holder.headers
    )
    assert made.status_code == 401, made.text
    links = await table_rows(app, "share_links")
    assert len(links) == 2
    assert all(link["withdrawn_at"] is None for link in links)  # the revocation withdrew none, before or raced


async def test_a_share_link_made_while_the_holder_signs_out_is_one_made_before_it(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Reported: a link made as the holder signs out commits after the sign-out. Found harmless: a sign-out refuses
    the token from then on and withdraws no link (one made before it stays live, the holder withdraws it), so the
    raced link is the one made just before; the token is refused for everything after."""
    holder = await signed_in_holder(app, client)
    before = await _share(client, holder)()

    async def sign_out() -> httpx.Response:
        return await client.delete("/v1/holder/sessions/current", headers=holder.headers)

    raced = await race(monkeypatch, share_links, "_own_certificate", _share(client, holder), sign_out)
    assert raced.ended.status_code == 204, raced.ended.text
    assert raced.ended_before_commit is not None
    assert backend == "postgresql" or raced.ended_before_commit is False
    for link in (raced.answer, before):
        page = await _opened(client, link)
        assert _VALID in page
    for refused in (
        await client.get("/v1/holder/share-links", headers=holder.headers),
        await _share(client, holder)(),
        await client.delete(f"/v1/holder/share-links/{before.json()['id']}", headers=holder.headers),
    ):
        assert refused.status_code == 401, refused.text
        assert "sign in again" in refused.json()["detail"]
    assert [link["withdrawn_at"] for link in await table_rows(app, "share_links")] == [None, None]


@pytest.mark.parametrize("ending", ["revoke_in_error", "sign_out_page"])
async def test_a_share_link_made_with_the_form_while_its_session_ends_answers_a_page_never_a_500(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, backend: str, ending: str
) -> None:
    """The pages' form checks its cookie as the API checks its bearer: the raced link commits after the ending on
    PostgreSQL and the page shows it; the cookie is refused afterwards (the sign-in form again)."""
    holder, home = await holder_at_home(app, client)
    csrf = csrf_of(home)

    async def share() -> httpx.Response:
        body = {"csrf": csrf, "number": holder.certificate["number"], "purpose": "hiring"}
        return await client.post("/holder/share-links", data=body)

    async def end() -> httpx.Response:
        if ending == "sign_out_page":
            return await client.post("/holder/sign-out", data={"csrf": csrf})
        return await act(client, holder.issuer, holder.certificate["number"], "revoke", "issued_in_error")

    raced = await race(monkeypatch, share_links, "_own_certificate", share, end)
    assert raced.ended.status_code == (303 if ending == "sign_out_page" else 200), raced.ended.text
    assert raced.ended_before_commit is not None
    assert backend == "postgresql" or raced.ended_before_commit is False
    assert raced.answer.status_code == 200, raced.answer.text
    url = re.search(r'<code id="new-link">([^<]+)</code>', raced.answer.text)
    assert url is not None, raced.answer.text
    page = await client.get(httpx.URL(url.group(1)).path)
    assert page.status_code == 200, page.text
    assert (_REVOKED if ending == "revoke_in_error" else _VALID) in page.text
    again = await client.get("/holder")
    assert again.status_code == 200
    assert 'name="claim_code"' in again.text  # signed out: the sign-in form
    assert holder.certificate["number_display"] not in again.text
