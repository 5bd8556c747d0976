"""Sign-in: OpenID Connect (NHS CIS2, Entra ID, any provider), and a demo-only dev sign-in.

``/auth/login`` sends the browser to the provider (authorization code flow with PKCE S256,
``state`` and ``nonce``, through Authlib's Starlette client); ``/auth/callback`` checks the
state against the session, exchanges the code, verifies the ID token (signature from the
provider's JWKS, issuer, audience, expiry, nonce) and starts a session for the sign-in name
taken from the first configured claim present (``preferred_username``, then ``email``).
``POST /auth/logout`` ends it. ``GET /auth/session`` tells a page who is signed in and the
CSRF token to send.

``/auth/dev`` lets anyone type a sign-in name: for demos only. It exists only with
``PASA_DEV_SIGNIN=1`` and never when an OIDC issuer is configured.
"""

from __future__ import annotations

import html
import warnings
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import authlib.deprecate  # type: ignore[import-untyped]
import httpx
import sqlalchemy as sa
import structlog
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc.errors import JoseError
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.clock import Clock
from pasa.config import Settings
from pasa.store import schema as s
from pasa.web.security import SESSION_NAME
from pasa.web.sessions import (
    SESSION_SEEN_AT,
    SESSION_SIGNED_IN_AT,
    csrf_field,
    csrf_token,
    sign_in,
    sign_out,
    signed_in_subject,
)

with warnings.catch_warnings():
    # Authlib warns that it prefers ``httpx2`` to ``httpx``; either works.
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]

    try:  # the HTTP client Authlib uses: httpx2 when installed, else httpx
        from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
            _compat,
        )

        _CLIENT_HTTP_ERROR: type[Exception] = _compat.httpx2.HTTPError
    except (ImportError, AttributeError):
        _CLIENT_HTTP_ERROR = httpx.HTTPError
    from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]

log = structlog.get_logger(__name__)
# What a provider that is down, slow or wrong can raise on the way.
_PROVIDER_ERRORS: tuple[type[Exception], ...] = (
    AuthlibBaseError,
    JoseError,
    httpx.HTTPError,
    _CLIENT_HTTP_ERROR,
    ValueError,
    KeyError,
    RuntimeError,
)

PROVIDER = "oidc"
NEXT_PATH_KEY = "next_path"
# Where to go after signing in: ``?next=/path`` (local paths only).
NextPath = Annotated[str | None, Query(alias="next")]


class SignInConfigError(ValueError):
    """The sign-in settings contradict each other or are incomplete."""


def discovery_url(settings: Settings) -> str | None:
    if settings.oidc_discovery_url:
        return settings.oidc_discovery_url
    if settings.oidc_issuer:
        return settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    return None


def provider_origin(settings: Settings) -> str | None:
    """The provider's origin (``https://host``), for CSP ``form-action``."""
    url = settings.oidc_issuer or discovery_url(settings)
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def oidc_configured(settings: Settings) -> bool:
    return discovery_url(settings) is not None


def dev_signin_enabled(settings: Settings) -> bool:
    return settings.dev_signin and not oidc_configured(settings)


def build_oauth(settings: Settings) -> Any:
    """Authlib's client for the configured provider, or None when none is configured."""
    url = discovery_url(settings)
    if url is None:
        return None
    if not settings.oidc_client_id:
        raise SignInConfigError("PASA_OIDC_ISSUER is set but PASA_OIDC_CLIENT_ID is not")
    scopes = settings.oidc_scopes.split()
    if "openid" not in scopes:
        raise SignInConfigError("PASA_OIDC_SCOPES must include 'openid'")
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.oidc_client_id,
        client_secret=(
            settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        ),
        server_metadata_url=url,
        client_kwargs={"scope": " ".join(scopes), "code_challenge_method": "S256"},
    )
    return oauth


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} - PASA</title></head><body style='font-family:Arial,"
        "sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem'>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _failed(sentence: str, status: int = 400) -> HTMLResponse:
    return _page(
        "Sign-in did not work",
        f"<p role='alert'>{html.escape(sentence)}</p>"
        "<p><a href='/auth/login'>Start signing in again</a></p>",
        status,
    )


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def valid_subject(value: str) -> str | None:
    cleaned = value.strip().lower()
    if not cleaned or len(cleaned) > 254 or any(c.isspace() for c in cleaned):
        return None
    return cleaned


def _record(engine: Engine, subject: str, action: str, details: dict[str, Any]) -> None:
    try:
        with engine.begin() as conn:
            audit.append(
                conn,
                actor=subject,
                action=action,
                subject_type="session",
                subject_id=subject,
                details=details,
            )
    except sa.exc.SQLAlchemyError as exc:  # the sign-in itself must not fail on this
        log.error("signin.audit_failed", action=action, error=type(exc).__name__)


def _personas(engine: Engine) -> list[tuple[str, str]]:
    """Sign-in names worth offering on the dev page: role holders, managers, staff."""
    from pasa.service import access

    found: dict[str, str] = {}
    try:
        for binding in access.list_bindings(engine):
            where = binding.organisation or "all organisations"
            found.setdefault(binding.subject, f"{binding.role.value} ({where})")
        with engine.connect() as conn:
            a, b, p = s.assignment, s.assignment.alias("report"), s.person
            managers = conn.execute(
                sa.select(p.c.email)
                .select_from(p.join(a, a.c.person_id == p.c.id))
                .where(
                    p.c.email.is_not(None),
                    sa.exists().where(
                        b.c.organisation_id == a.c.organisation_id,
                        b.c.supervisor_assignment_number == a.c.assignment_number,
                    ),
                )
                .distinct()
                .order_by(p.c.email)
                .limit(5)
            ).scalars()
            for email in managers:
                found.setdefault(email.lower(), "line manager")
            staff = conn.execute(
                sa.select(p.c.email).where(p.c.email.is_not(None)).order_by(p.c.id).limit(5)
            ).scalars()
            for email in staff:
                found.setdefault(email.lower(), "staff")
    except sa.exc.SQLAlchemyError:
        pass
    return list(found.items())


def _redirect_uri(request: Request, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/auth/callback"
    return str(request.url_for("auth_callback"))


def _sign_in_name(claims: dict[str, Any], settings: Settings) -> str | None:
    for claim in (c.strip() for c in settings.oidc_name_claims.split(",")):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return valid_subject(value)
    return None


def install(app: FastAPI, settings: Settings, engine: Engine, clock: Clock) -> None:
    """Add the ``/auth`` routes to ``app`` (and say loudly what sign-in is on)."""
    oauth = build_oauth(settings)
    app.state.oauth = oauth
    dev = dev_signin_enabled(settings)
    if settings.dev_signin and not dev:
        log.error(
            "signin.dev_refused",
            detail="PASA_DEV_SIGNIN is ignored because an OIDC issuer is configured",
        )
    if dev:
        log.warning(
            "signin.dev_enabled",
            detail="DEVELOPMENT SIGN-IN IS ON (PASA_DEV_SIGNIN=1): anyone who can reach "
            "this server can sign in as anyone. Demo use only; never in production.",
        )
    if oauth is not None:
        log.info("signin.oidc", discovery=discovery_url(settings))
    elif not dev:
        log.info("signin.none", detail="no OIDC provider configured: only API tokens work")

    router = APIRouter(prefix="/auth", include_in_schema=False)

    @router.get("/login")
    async def login(request: Request, then: NextPath = None) -> Response:
        if oauth is None:
            if dev:
                query = urlencode({"next": safe_next(then)})
                return RedirectResponse(f"/auth/dev?{query}", status_code=303)
            return _failed("Sign-in is not configured on this PASA server.", 404)
        request.session[NEXT_PATH_KEY] = safe_next(then)
        try:
            response: Response = await oauth.oidc.authorize_redirect(
                request, _redirect_uri(request, settings)
            )
        except _PROVIDER_ERRORS as exc:
            log.error("signin.provider_unreachable", error=type(exc).__name__)
            return _failed(
                f"{settings.oidc_provider_name} could not be reached. Try again shortly.", 503
            )
        return response

    @router.get("/callback", name="auth_callback")
    async def callback(request: Request) -> Response:
        if oauth is None:
            return _failed("Sign-in is not configured on this PASA server.", 404)
        error = request.query_params.get("error")
        if error:
            log.info("signin.provider_refused", error=error[:64])
            return _failed(f"The sign-in service refused the sign-in ({error[:64]}).", 400)
        try:
            token = await oauth.oidc.authorize_access_token(request)
        except _PROVIDER_ERRORS as exc:
            log.warning("signin.callback_refused", error=type(exc).__name__)
            return _failed(
                "This sign-in could not be checked (it may have expired, been used already, "
                "or not have started here).",
                400,
            )
        claims = token.get("userinfo")
        if not claims:
            log.warning("signin.callback_refused", error="no ID token")
            return _failed("The sign-in service did not return an ID token.", 400)
        subject = _sign_in_name(dict(claims), settings)
        if subject is None:
            log.warning("signin.no_name", claims=settings.oidc_name_claims)
            return _failed(
                "Your account has no sign-in name PASA can use "
                f"(looked for: {settings.oidc_name_claims}). Ask the identity team.",
                403,
            )
        name = str(claims.get("name") or subject)
        next_path = safe_next(request.session.get(NEXT_PATH_KEY))
        sign_in(request, subject, name, method="oidc", clock=clock)
        issuer = str(claims.get("iss", ""))
        log.info("signin.ok", subject=subject, method="oidc", issuer=issuer)
        _record(engine, subject, "user.signed_in", {"method": "oidc", "issuer": issuer})
        return RedirectResponse(next_path, status_code=303)

    @router.post("/logout")
    def logout(request: Request) -> Response:
        subject = sign_out(request)
        if subject:
            log.info("signin.signed_out", subject=subject)
            _record(engine, subject, "user.signed_out", {})
        return RedirectResponse("/", status_code=303)

    @router.get("/session")
    def session_info(request: Request) -> JSONResponse:
        subject = signed_in_subject(request)
        if subject is None:
            return JSONResponse({"signed_in": False, "login": "/auth/login"})
        idle = settings.session_idle_minutes * 60
        absolute = settings.session_absolute_hours * 3600
        return JSONResponse(
            {
                "signed_in": True,
                "subject": subject,
                "name": request.session.get(SESSION_NAME) or subject,
                "csrf_token": csrf_token(request),
                "idle_expires_at": float(request.session[SESSION_SEEN_AT]) + idle,
                "expires_at": float(request.session[SESSION_SIGNED_IN_AT]) + absolute,
            }
        )

    if dev:

        @router.get("/dev", response_class=HTMLResponse)
        def dev_form(request: Request, then: NextPath = None) -> HTMLResponse:
            request.session[NEXT_PATH_KEY] = safe_next(then)
            field = csrf_field(request)
            buttons = "".join(
                f"<li><form method='post' action='/auth/dev'>{field}"
                f"<input type='hidden' name='subject' value='{html.escape(name)}'>"
                f"<button type='submit'>{html.escape(name)}</button> "
                f"{html.escape(label)}</form></li>"
                for name, label in _personas(engine)
            )
            return _page(
                "Development sign-in",
                "<p role='alert' style='border-left:8px solid #d5281b;padding-left:1rem'>"
                "<strong>Demo only.</strong> This server lets anyone sign in as anyone "
                "(PASA_DEV_SIGNIN=1). Real deployments sign in with OpenID Connect.</p>"
                + (f"<h2>Choose a persona</h2><ul>{buttons}</ul>" if buttons else "")
                + "<h2>Or type a sign-in name</h2>"
                f"<form method='post' action='/auth/dev'>{field}"
                "<p><label for='subject'>Sign-in name (e.g. jane.smith@nhs.net)</label><br>"
                "<input id='subject' name='subject' required size='40' "
                "autocomplete='username'></p><p><button type='submit'>Sign in</button></p>"
                "</form>",
            )

        @router.post("/dev")
        async def dev_sign_in(request: Request) -> Response:
            # The CSRF token was checked by the session guard before we got here.
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            subject = valid_subject((form.get("subject") or [""])[0])
            if subject is None:
                return _page(
                    "Development sign-in",
                    "<p role='alert'>Enter a sign-in name without spaces, such as "
                    "jane.smith@nhs.net.</p><p><a href='/auth/dev'>Try again</a></p>",
                    400,
                )
            next_path = safe_next(request.session.get(NEXT_PATH_KEY))
            sign_in(request, subject, subject, method="dev", clock=clock)
            log.warning("signin.ok", subject=subject, method="dev")
            _record(engine, subject, "user.signed_in", {"method": "dev"})
            return RedirectResponse(next_path, status_code=303)

    app.include_router(router)
