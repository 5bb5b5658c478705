"""Health, readiness, metrics and the exported OpenAPI document."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import create_app, dispose
from cli.main import openapi_document
from registry.config import Settings
from registry.gc_tuning import GC_THRESHOLDS
from tests.factories import admin_token, create_issuer, issued_certificate, issuer_token

ROOT = Path(__file__).resolve().parents[2]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "pools": {"primary": {"state": "ok"}}}  # no replica configured


def _samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def _delta(
    before: dict[tuple[str, frozenset[tuple[str, str]]], float],
    after: dict[tuple[str, frozenset[tuple[str, str]]], float],
    name: str,
    **labels: str,
) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_count_requests_by_route_issuance_and_verification_results(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Counters are process-wide (earlier tests have moved them too): what is asserted is the change these requests
    make, exactly, between two scrapes."""
    admin = await admin_token(app, client)
    await create_issuer(client, admin)
    issuer = await issuer_token(app, client, "BJ-AI-COMMITTEE")
    before = _samples((await client.get("/metrics")).text)

    certificate = await issued_certificate(client, issuer, cert_type="title")
    for _ in range(3):
        assert (await client.get(f"/v1/verify/{certificate['qr_token']}")).status_code == 200
    assert (await client.get("/v1/verify/" + "x" * 24)).status_code == 404

    text = (await client.get("/metrics")).text
    after = _samples(text)
    verify_route = {"method": "GET", "route": "/v1/verify/{token}"}
    assert _delta(before, after, "registry_http_requests_total", **verify_route, status="200") == 3
    assert _delta(before, after, "registry_http_requests_total", **verify_route, status="404") == 1
    assert _delta(before, after, "registry_http_request_duration_seconds_count", **verify_route) == 4
    assert _delta(before, after, "registry_certificates_issued_total", cert_type="title") == 1
    assert _delta(before, after, "registry_certificates_issued_total", cert_type="skill") == 0
    assert _delta(before, after, "registry_verifications_total", channel="token", result="valid") == 3
    assert _delta(before, after, "registry_verifications_total", channel="token", result="not_found") == 1
    assert certificate["qr_token"] not in text


def test_exported_openapi_matches_the_app() -> None:
    exported = json.loads((ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    assert exported == json.loads(openapi_document()), "run: registry openapi > openapi/openapi.json"


def test_openapi_names_the_fixed_routes() -> None:
    paths = json.loads(openapi_document())["paths"]
    for path in (
        "/oauth/token",
        "/.well-known/jwks.json",
        "/v1/catalogue",
        "/v1/issuers",
        "/v1/issuers/{code}",
        "/v1/clients",
        "/v1/certificates",
        "/v1/certificates/{number}",
        "/v1/verify/{token}",
        "/v1/verify",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path


async def test_the_server_freezes_start_up_objects_out_of_garbage_collection(app: FastAPI) -> None:
    thresholds = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000  # modules, the app, its routes and models
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_docs_and_metrics_can_be_turned_off_or_put_behind_a_token(settings: Settings) -> None:
    closed = create_app(settings.model_copy(update={"docs": False, "metrics": False}))
    guarded = create_app(settings.model_copy(update={"metrics_token": SecretStr("s3cret-metrics")}))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=closed), base_url="https://r.test") as http:
            for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
                assert (await http.get(path)).status_code == 404, path
            assert (await http.get("/healthz")).status_code == 200
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="https://r.test") as http:
            refused = await http.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = await http.get("/metrics", headers={"Authorization": "Bearer guess"})
            assert wrong.status_code == 401
            allowed = await http.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
            assert allowed.status_code == 200
            assert "registry_http_requests_total" in allowed.text
            assert (await http.get("/docs")).status_code == 200  # docs stay on outside production
    finally:
        await dispose(closed)
        await dispose(guarded)


def test_production_turns_docs_and_metrics_off_unless_asked() -> None:
    production = Settings(env="production")
    assert (production.docs_enabled, production.metrics_enabled) == (False, False)
    assert Settings(env="production", docs=True, metrics=True).docs_enabled
    assert (Settings().docs_enabled, Settings().metrics_enabled) == (True, True)
