"""``REGISTRY_BATCH_WORKERS`` unset: one signing worker per usable core, none on a single core (registry.config).

The rest of the suite runs with the setting at 0 (tests/conftest.py); these tests take it away again."""

from __future__ import annotations

import os

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from cli.main import share_signing_workers
from registry import config, workers
from registry.certificates import minting
from registry.certificates.models import Certificate
from registry.config import Settings
from registry.db import transaction
from tests.factories import bearer, certificate_body, ready_issuer, resident_id


@pytest.fixture
def default_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings with ``batch_workers`` as an operator who never set it has it."""
    monkeypatch.delenv("REGISTRY_BATCH_WORKERS", raising=False)
    unset = Settings(**settings.model_dump(exclude={"batch_workers"}, exclude_unset=True))
    assert unset.batch_workers is None
    return unset


@pytest.mark.parametrize(("cores", "expected"), [(1, 0), (2, 2), (4, 4), (200, 64)])
def test_unset_means_one_worker_per_usable_core_and_none_on_one_core(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch, cores: int, expected: int
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: cores)
    assert default_settings.batch_worker_count == expected


@pytest.mark.parametrize(
    ("cores", "serving", "each"), [(1, 1, 0), (1, 4, 0), (2, 2, 2), (4, 4, 2), (16, 16, 2), (16, 2, 8), (16, 3, 5)]
)
def test_serving_processes_share_the_cores_and_keep_two_workers_each(
    monkeypatch: pytest.MonkeyPatch, cores: int, serving: int, each: int
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: cores)
    assert config.default_batch_workers(serving) == each


def test_registry_serve_tells_each_process_its_share_unless_the_operator_set_it(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: 16)
    share_signing_workers(default_settings, serving_processes=4)
    assert os.environ["REGISTRY_BATCH_WORKERS"] == "4"  # each of 4 uvicorn workers reads it: 16 in all, not 64
    assert Settings().batch_worker_count == 4
    monkeypatch.setenv("REGISTRY_BATCH_WORKERS", "3")
    share_signing_workers(Settings(), serving_processes=4)
    assert os.environ["REGISTRY_BATCH_WORKERS"] == "3"


@pytest.mark.parametrize("given", [0, 1, 3])
def test_a_count_given_is_taken_whatever_the_cores(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, given: int
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: 8)
    assert settings.model_copy(update={"batch_workers": given}).batch_worker_count == given


def test_the_usable_cores_are_those_this_process_may_run_on() -> None:
    assert config.usable_cores() == len(os.sched_getaffinity(0))


async def test_by_default_a_two_core_server_signs_a_large_batch_in_two_workers(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: 2)
    handed: list[int] = []
    hand_over = minting.hand_over

    def counting(pool: object, portable: object, rows: list[minting.RowFacts]) -> minting.Handed:
        handed.append(len(rows))
        return hand_over(pool, portable, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(minting, "hand_over", counting)
    application = create_app(default_settings)
    async with application.router.lifespan_context(application):
        pool = workers.pool(2)
        assert pool is not None
        assert len(pool._processes) == 2  # started with the app, before any batch
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="https://registry.test") as http:
            issuer = await ready_issuer(application, http)
            rows = [
                certificate_body(holder={"name": f"学员{i}", "id_type": "resident_id", "id_number": resident_id()})
                for i in range(default_settings.batch_parallel_min_rows)
            ]
            response = await http.post(
                "/v1/certificate-batches",
                json={"certificates": rows},
                headers={**bearer(issuer), "Idempotency-Key": "default-workers"},
            )
            assert response.status_code == 201, response.text
            assert response.json()["count"] == len(rows)
        async with transaction(application.state.sessions) as session:
            stored = await session.scalar(select(func.count()).select_from(Certificate))
        assert stored == len(rows)
    assert handed == [100, 100]  # the whole batch went to the workers, each of the two chunks read as it was screened
    assert not workers.running()
