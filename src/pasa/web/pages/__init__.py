"""The web application's pages: server-rendered (Jinja2, NHS.UK frontend), each authorized
through :mod:`pasa.web.security`; static files (the built NHS.UK frontend, htmx) under
``/static`` and the design system's images under ``/assets``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pasa.config import Settings
from pasa.web.pages.rendering import STATIC, install_error_pages


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages, the static files and the browsers' error pages to ``app``."""
    from pasa.web.pages import (
        admin,
        credentials,
        dashboard,
        identity,
        passport_verify,
        readiness,
        requests,
        views,
    )

    app.state.page_settings = settings
    for module in (views, requests, identity, admin, dashboard, readiness, credentials):
        app.include_router(module.router)
    app.include_router(passport_verify.router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    # nhsuk-frontend's CSS refers to its images under /assets.
    app.mount(
        "/assets",
        StaticFiles(directory=STATIC / "vendor" / "assets", check_dir=False),
        name="assets",
    )
    install_error_pages(app)
