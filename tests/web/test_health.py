"""Health and metrics endpoints an operator's monitoring relies on."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pasa.store.db import make_engine
from pasa.web.app import create_app


def test_healthz_reports_ok_with_a_database(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_reports_503_when_the_database_is_unreachable() -> None:
    broken = make_engine("postgresql://nobody:wrong@127.0.0.1:1/none")
    client = TestClient(create_app(broken))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


def test_metrics_and_status_page_show_counts(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "pasa_people 0" in metrics.text
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>PASA" in page.text
