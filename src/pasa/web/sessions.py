"""Browser sessions: a signed cookie, timeouts enforced on the server, and CSRF tokens.

The session is Starlette's :class:`~starlette.middleware.sessions.SessionMiddleware`: a
cookie signed with ``PASA_SESSION_SECRET`` (itsdangerous), ``HttpOnly``, ``SameSite=Lax`` and
``Secure`` unless switched off for a plain-http demo. It holds the signed-in user's sign-in
name (:data:`~pasa.web.security.SESSION_SUBJECT`), display name, when they signed in, when
they were last seen and their CSRF token; nothing else is trusted from it.

:class:`SessionGuard` runs inside it on every request:

* it ends a signed-in session idle for longer than the idle timeout (30 minutes) or older
  than the absolute timeout (12 hours), by the application's clock, whatever the cookie's
  own lifetime says;
* it checks a CSRF token (synchroniser token kept in the session) on POST, PUT, PATCH and
  DELETE requests authenticated by the session: sent as the ``X-CSRF-Token`` header, or as
  the ``csrf_token`` field of a url-encoded or multipart form. Requests with an
  ``Authorization`` header are exempt: a bearer token is never sent by a browser on its own.
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import structlog
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasa.clock import Clock
from pasa.config import Settings
from pasa.web.forms import MultipartError, parse_multipart
from pasa.web.hardening import send_problem
from pasa.web.security import SESSION_NAME, SESSION_SUBJECT

log = structlog.get_logger(__name__)

SESSION_SIGNED_IN_AT = "signed_in_at"
SESSION_SEEN_AT = "seen_at"
SESSION_CSRF = "csrf"
SESSION_METHOD = "method"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
FORM_DATA = b"multipart/form-data"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Checked even before anyone is signed in (login CSRF).
CSRF_ALWAYS = ("/auth/dev",)
# Pages that authenticate by something else (a one-time code) and never read the session.
CSRF_EXEMPT = ("/activate",)


def session_secret(settings: Settings) -> str:
    """``PASA_SESSION_SECRET``, or a random one for this process (with a warning)."""
    if settings.session_secret is not None:
        value = settings.session_secret.get_secret_value()
        if len(value) < 32:
            log.warning(
                "session.secret_short",
                detail="PASA_SESSION_SECRET should be at least 32 random characters",
            )
        return value
    log.warning(
        "session.secret_generated",
        detail="PASA_SESSION_SECRET is not set: a random secret was generated for this "
        "process; sessions end when it restarts and are not shared between processes",
    )
    return secrets.token_urlsafe(32)


def install(app: Any, settings: Settings, clock: Clock) -> None:
    """Add the session cookie and :class:`SessionGuard` to ``app`` (a Starlette app)."""
    absolute = dt.timedelta(hours=settings.session_absolute_hours)
    app.add_middleware(
        SessionGuard,
        clock=clock,
        idle=dt.timedelta(minutes=settings.session_idle_minutes),
        absolute=absolute,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=settings.session_cookie_name,
        max_age=int(absolute.total_seconds()),
        same_site="lax",
        https_only=settings.session_cookie_secure,
    )


# --- what routes use ---------------------------------------------------------------------


def _session(conn: HTTPConnection) -> dict[str, Any]:
    session: dict[str, Any] = conn.scope["session"]
    return session


def csrf_token(conn: HTTPConnection) -> str:
    """This session's CSRF token (created on first use), for forms and ``X-CSRF-Token``."""
    session = _session(conn)
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_field(conn: HTTPConnection) -> str:
    """A hidden form field carrying the CSRF token."""
    return f"<input type='hidden' name='{CSRF_FIELD}' value='{html.escape(csrf_token(conn))}'>"


def sign_in(conn: HTTPConnection, subject: str, name: str, *, method: str, clock: Clock) -> None:
    """Start a fresh session for ``subject``: nothing from before sign-in is kept, and the
    CSRF token is new."""
    session = _session(conn)
    session.clear()
    now = clock.now().timestamp()
    session.update(
        {
            SESSION_SUBJECT: subject,
            SESSION_NAME: name,
            SESSION_METHOD: method,
            SESSION_SIGNED_IN_AT: now,
            SESSION_SEEN_AT: now,
            SESSION_CSRF: secrets.token_urlsafe(32),
        }
    )


def sign_out(conn: HTTPConnection) -> str | None:
    """End the session; the sign-in name it had, if any."""
    session = _session(conn)
    subject = session.get(SESSION_SUBJECT)
    session.clear()
    return str(subject) if subject else None


def signed_in_subject(conn: HTTPConnection) -> str | None:
    subject = _session(conn).get(SESSION_SUBJECT)
    return str(subject) if subject else None


# --- the guard ---------------------------------------------------------------------------


class SessionGuard:
    """Idle and absolute timeouts, and the CSRF check (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        clock: Clock,
        idle: dt.timedelta,
        absolute: dt.timedelta,
        exempt: Sequence[str] = CSRF_EXEMPT,
    ) -> None:
        self.app = app
        self.clock = clock
        self.idle = idle.total_seconds()
        self.absolute = absolute.total_seconds()
        self.exempt = tuple(exempt)

    def _expire(self, session: dict[str, Any]) -> None:
        now = self.clock.now().timestamp()
        signed_in_at = session.get(SESSION_SIGNED_IN_AT)
        seen_at = session.get(SESSION_SEEN_AT)
        reason = None
        if not isinstance(signed_in_at, int | float) or not isinstance(seen_at, int | float):
            reason = "no timestamps"
        elif now - signed_in_at >= self.absolute:
            reason = "absolute timeout"
        elif now - seen_at >= self.idle:
            reason = "idle timeout"
        elif signed_in_at > now + 300:
            reason = "signed in in the future"
        if reason is None:
            session[SESSION_SEEN_AT] = now
            return
        log.info("session.expired", subject=session.get(SESSION_SUBJECT), reason=reason)
        session.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "session" not in scope:
            await self.app(scope, receive, send)
            return
        session: dict[str, Any] = scope["session"]
        signed_in = bool(session.get(SESSION_SUBJECT))
        if signed_in:
            self._expire(session)
            signed_in = bool(session.get(SESSION_SUBJECT))
        path = str(scope.get("path", ""))
        headers = dict(scope.get("headers", []))
        if (
            scope.get("method") not in UNSAFE_METHODS
            or b"authorization" in headers
            or not (signed_in or path.startswith(CSRF_ALWAYS))
            or path.startswith(self.exempt)
        ):
            await self.app(scope, receive, send)
            return
        expected = session.get(SESSION_CSRF)
        sent = headers.get(b"x-csrf-token", b"").decode("latin-1")
        body: bytes | None = None
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not sent and content_type in (b"application/x-www-form-urlencoded", FORM_DATA):
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            if content_type == FORM_DATA:
                # A file upload: the token is a field of the multipart body.
                try:
                    full_type = headers.get(b"content-type", b"").decode("latin-1")
                    sent = parse_multipart(full_type, body).fields.get(CSRF_FIELD, "")
                except MultipartError:
                    sent = ""
            else:
                form = parse_qs(body.decode("utf-8", "replace"))
                sent = (form.get(CSRF_FIELD) or [""])[0]
        if not (
            isinstance(expected, str)
            and expected
            and sent
            and hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace"))
        ):
            log.warning("csrf.refused", path=path, method=scope.get("method"))
            await send_problem(
                scope,
                send,
                403,
                "this form has expired or did not come from PASA (missing or wrong CSRF "
                "token): reload the page and try again",
            )
            return
        if body is None:
            await self.app(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
