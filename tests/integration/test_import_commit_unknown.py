"""A large import whose chunk's COMMIT was sent but whose answer never came (a TimeoutError, a lost connection) says
that chunk may or may not have been issued — it used to say "nothing from row N on was committed", though here the
server did commit it — and running it again carries on: the committed chunk is replayed under its idempotency key,
its claim codes written again, and no row is issued twice."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from registry.certificates import imports
from registry.errors import ServiceUnavailable
from registry.i18n import translate
from tests.integration.test_import_interrupted import _issued, _roll
from tests.integration.test_import_language import ISSUER


class _AnswerLostAtThirdCommit(Session):
    """A session whose third commit (the prepare step's, the first chunk's, then the second chunk's) is applied by
    the database but heard by the import as a timeout, as when the server stops answering right after COMMIT."""


async def test_a_chunk_committed_without_its_answer_is_said_unknown_and_a_rerun_replays_it(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    path = await _roll(app, client, tmp_path)
    commits: list[int] = []

    def answer_lost(_session: Session) -> None:
        commits.append(1)
        if len(commits) == 3:
            raise TimeoutError

    event.listen(_AnswerLostAtThirdCommit, "after_commit", answer_lost)
    engine = app.state.sessions.kw["bind"]
    losing: async_sessionmaker[AsyncSession] = async_sessionmaker(
        engine, sync_session_class=_AnswerLostAtThirdCommit, expire_on_commit=False, autoflush=False
    )
    try:
        with pytest.raises(ServiceUnavailable) as stopped:
            await imports.run_import(app.state.context, losing, path=path, issuer_code=ISSUER)
    finally:
        event.remove(_AnswerLostAtThirdCommit, "after_commit", answer_lost)

    lines = [line.strip() for line in translate(stopped.value.detail, "en").splitlines()]
    assert lines[0] == (
        "the import stopped at row 3: the database stopped answering while the chunk's commit was under way"
    )
    assert lines[1].startswith("rows 1 to 2 were committed before it (2 issued, 0 already issued, 0 rejected)")
    assert lines[2] == (
        "rows 3 to 4 may or may not have been issued (the import stopped while their commit was under way, and its "
        "outcome was never heard); nothing after them was committed"
    )
    assert "nothing from row 3 on was committed" not in lines
    async with app.state.sessions() as session:  # the truth here: the server did commit rows 3 and 4
        names = (await session.execute(text("SELECT holder_name FROM certificates ORDER BY holder_name"))).scalars()
        assert list(names) == ["导入0", "导入1", "导入2", "导入3"]

    summary = await imports.run_import(app.state.context, app.state.sessions, path=path, issuer_code=ISSUER)

    assert (summary.rows, summary.issued, summary.already_issued, summary.rejected) == (5, 1, 4, 0)
    issued = _issued(path.with_suffix(".issued.csv"))
    assert [int(row[0]) for row in issued] == [1, 2, 3, 4, 5]
    assert all(row[3] for row in issued)  # claim codes of the unheard chunk too, replayed from its stored outcome
    async with app.state.sessions() as session:
        count = (await session.execute(text("SELECT count(*) FROM certificates"))).scalar_one()
        assert count == 5  # no row issued twice
