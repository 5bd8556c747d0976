"""FastAPI application: ``/healthz``, ``/metrics`` and a status page at ``/``."""

from __future__ import annotations

import html

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from sqlalchemy.engine import Engine

from pasa import __version__
from pasa.config import get_settings
from pasa.store import schema as s
from pasa.store.db import make_engine


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        out = {
            "people": conn.scalar(sa.select(sa.func.count()).select_from(s.person)) or 0,
            "assignments": conn.scalar(sa.select(sa.func.count()).select_from(s.assignment)) or 0,
            "hr_imports": conn.scalar(sa.select(sa.func.count()).select_from(s.hr_import)) or 0,
            "accounts": conn.scalar(sa.select(sa.func.count()).select_from(s.account)) or 0,
            "audit_entries": conn.scalar(sa.select(sa.func.count()).select_from(s.audit_log)) or 0,
        }
        for status, n in conn.execute(
            sa.select(s.operation.c.status, sa.func.count()).group_by(s.operation.c.status)
        ):
            out[f"operations_{status}"] = n
        out["manual_tasks_open"] = (
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(s.manual_task)
                .where(s.manual_task.c.status == "open")
            )
            or 0
        )
    return out


def create_app(engine: Engine | None = None) -> FastAPI:
    eng = engine or make_engine(get_settings().database_url)
    app = FastAPI(title="PASA", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            with eng.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        lines = []
        for name, value in sorted(_counts(eng).items()):
            lines.append(f"# TYPE pasa_{name} gauge")
            lines.append(f"pasa_{name} {value}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        counts = _counts(eng)
        rows = "".join(
            f"<tr><th scope='row'>{html.escape(k.replace('_', ' '))}</th><td>{v:,}</td></tr>"
            for k, v in counts.items()
        )
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>PASA status</title></head><body style='font-family:Arial,sans-serif;"
            "max-width:48rem;margin:2rem auto;padding:0 1rem'>"
            "<h1>PASA: Provisioning and Systems Access</h1>"
            "<p>The web application for line managers, staff and the identity team arrives "
            "with the web issue. This page shows the state of this instance.</p>"
            f"<table>{rows}</table>"
            "<p>Command line: <code>pasa readiness</code>, <code>pasa explain PERSON</code>, "
            "<code>pasa audit verify</code>. Health: <a href='/healthz'>/healthz</a>, "
            "metrics: <a href='/metrics'>/metrics</a>.</p></body></html>"
        )

    return app
