"""FastAPI application: ``/healthz``, ``/metrics``, the REST API, SCIM and the web pages."""

from __future__ import annotations

import html
import inspect
from collections.abc import Mapping
from urllib.parse import parse_qs

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from pasa import __version__
from pasa.clock import Clock, SystemClock
from pasa.config import Settings, get_settings
from pasa.connectors.base import Connector
from pasa.store import schema as s
from pasa.store.db import make_engine
from pasa.web.security import AccessDenied

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def denial_response(request: Request, exc: AccessDenied) -> Response:
    """A refusal in the caller's protocol: a SCIM error under ``/scim``, else RFC 9457."""
    headers = {"WWW-Authenticate": 'Bearer realm="PASA"'} if exc.status == 401 else {}
    if request.url.path.startswith("/scim/"):
        return JSONResponse(
            {"schemas": [SCIM_ERROR], "status": str(exc.status), "detail": exc.detail},
            status_code=exc.status,
            media_type="application/scim+json",
            headers=headers,
        )
    return JSONResponse(
        {
            "type": "about:blank",
            "title": _TITLES.get(exc.status, "Refused"),
            "status": exc.status,
            "detail": exc.detail,
        },
        status_code=exc.status,
        media_type="application/problem+json",
        headers=headers,
    )


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


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:Arial,sans-serif;"
        f"max-width:36rem;margin:2rem auto;padding:0 1rem'><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


_ACTIVATE_FORM = (
    "<p>Your line manager gave you a one-time activation code. Enter it with the password "
    "you want to use (at least 12 characters, not containing your name or username).</p>"
    "<form method='post' action='/activate' autocomplete='off'>"
    "<p><label for='code'>Activation code</label><br>"
    "<input id='code' name='code' required size='60' autocomplete='off'></p>"
    "<p><label for='password'>New password</label><br>"
    "<input id='password' name='password' type='password' required minlength='12' "
    "autocomplete='new-password'></p>"
    "<p><label for='confirm'>New password again</label><br>"
    "<input id='confirm' name='confirm' type='password' required minlength='12' "
    "autocomplete='new-password'></p>"
    "<p><button type='submit'>Set my password</button></p></form>"
)


def _install_signin_and_hardening(
    app: FastAPI, config: Settings, engine: Engine, clock: Clock
) -> None:
    """Sign-in routes, the session cookie and the hardening middleware (outermost last)."""
    from pasa import logs
    from pasa.web import hardening, sessions, signin

    logs.install_stdlib_filter()
    signin.install(app, config, engine, clock)
    sessions.install(app, config, clock)
    app.add_middleware(
        hardening.RateLimit, signin=config.signin_rate_limit, token=config.token_rate_limit
    )
    app.add_middleware(hardening.BodySizeLimit, max_bytes=config.max_body_bytes)
    issuer = signin.provider_origin(config)
    app.add_middleware(
        hardening.SecurityHeaders,
        hsts=config.session_cookie_secure,
        form_action=[issuer] if issuer else [],
    )


def create_app(
    engine: Engine | None = None,
    *,
    connectors: Mapping[str, Connector] | None = None,
    clock: Clock | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The web application; ``connectors`` and ``clock`` default to the targets' own
    connectors (built per activation) and the system clock, ``settings`` to the
    environment's."""
    config = settings or get_settings()
    eng = engine or make_engine(config.database_url)
    the_clock = clock or SystemClock()
    app = FastAPI(
        title="PASA",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.engine = eng
    app.state.clock = the_clock

    @app.exception_handler(AccessDenied)
    def access_denied(request: Request, exc: AccessDenied) -> Response:
        return denial_response(request, exc)

    from pasa.web.api import router as api_router
    from pasa.web.api.problems import install as install_api_problems
    from pasa.web.passport import router as passport_router
    from pasa.web.scim import router as scim_router
    from pasa.web.verifier import router as verifier_router

    app.include_router(api_router)
    install_api_problems(app)
    api_http_error = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        # FastAPI's own 404/405 (no such route, wrong method) in the caller's protocol too.
        if request.url.path.startswith("/scim/") and isinstance(exc, StarletteHTTPException):
            detail = exc.detail if isinstance(exc.detail, str) else "refused"
            if exc.status_code == 404:
                detail = f"there is no SCIM resource at {request.url.path}"
            return JSONResponse(
                {"schemas": [SCIM_ERROR], "status": str(exc.status_code), "detail": detail},
                status_code=exc.status_code,
                media_type="application/scim+json",
                headers=dict(exc.headers or {}),
            )
        response = api_http_error(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.include_router(scim_router)
    app.include_router(passport_router)
    app.include_router(verifier_router)
    _install_signin_and_hardening(app, config, eng, the_clock)

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

    @app.get("/activate", response_class=HTMLResponse, include_in_schema=False)
    def activate_form() -> HTMLResponse:
        return _page("Activate your account", _ACTIVATE_FORM)

    @app.post("/activate", response_class=HTMLResponse, include_in_schema=False)
    async def activate(request: Request) -> HTMLResponse:
        from pasa.domain.errors import PasaError
        from pasa.service.handover import redeem
        from pasa.service.provisioning import connectors_for

        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        code = (form.get("code") or [""])[0]
        password = (form.get("password") or [""])[0]
        confirm = (form.get("confirm") or [""])[0]

        def failed(sentence: str) -> HTMLResponse:
            # Never echo the code or the password back: the form is shown empty again.
            return _page(
                "Activate your account",
                f"<p role='alert' style='color:#b00'><strong>{html.escape(sentence)}</strong>"
                f"</p>{_ACTIVATE_FORM}",
                status=400,
            )

        if not code or not password:
            return failed("Enter your activation code and a new password.")
        if password != confirm:
            return failed("The two passwords are not the same; please type them again.")
        built = connectors is None
        targets = connectors if connectors is not None else connectors_for(eng)
        try:
            username = redeem(eng, code, password, connectors=targets, clock=the_clock)
        except PasaError as exc:
            text = str(exc)
            return failed(text[:1].upper() + text[1:] + ("" if text.endswith(".") else "."))
        finally:
            if built:
                for connector in targets.values():
                    connector.close()
        return _page(
            "Your account is ready",
            f"<p>Your password is set. Sign in as <strong>{html.escape(username)}</strong>."
            "</p><p>This activation code cannot be used again.</p>",
        )

    from pasa.web import pages

    pages.install(app, config)  # the web application: /, /home, /team, /my-access ...

    return app
