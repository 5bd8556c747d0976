"""Who is calling, and may they: one FastAPI dependency for the API, SCIM and the pages.

A request is authenticated by an ``Authorization: Bearer pasa_…`` API token (other systems,
scripts) or by the signed-in user's session (people, through the web sign-in). Either way the
caller becomes a :class:`~pasa.domain.access.Principal` and every endpoint asks
:func:`authorize` before touching anything. A refusal is raised as :class:`AccessDenied`; the
application renders it as the caller's protocol expects (RFC 9457 problem for ``/api``, a
SCIM error for ``/scim``): 401 without credentials, 403 or 404 as
:func:`pasa.domain.access.decide` designs it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from pasa.clock import Clock, local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Decision, Principal, Resource, decide
from pasa.service import access

# The key under which the session (when a session middleware is installed) holds the
# signed-in user's sign-in name.
SESSION_SUBJECT = "subject"
SESSION_NAME = "name"


class AccessDenied(Exception):
    """Refused: ``status`` is 401 (who are you?), 403 (not allowed) or 404 (not for you)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @classmethod
    def of(cls, decision: Decision, action: Action) -> AccessDenied:
        if decision.status == 404:
            return cls(404, "not found")
        return cls(403, f"not allowed to {action.value.replace('.', ' ')}: {decision.reason}")


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def current_principal(request: Request) -> Principal:
    """The caller, from a bearer token or the session; :class:`AccessDenied` 401 if neither."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    engine = engine_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    found: Principal | None = None
    if header:
        if scheme.lower() != "bearer" or not credentials.strip():
            raise AccessDenied(401, "the Authorization header must be 'Bearer <API token>'")
        try:
            found = access.token_principal(engine, credentials.strip(), now=clock_of(request).now())
        except access.InvalidToken as exc:
            raise AccessDenied(401, str(exc)) from None
    else:
        session = request.scope.get("session") or {}
        subject = session.get(SESSION_SUBJECT)
        if subject:
            found = access.user_principal(
                engine,
                str(subject),
                display_name=str(session.get(SESSION_NAME) or ""),
                at=local_date(clock_of(request).now(), get_settings().timezone),
            )
    if found is None:
        raise AccessDenied(401, "sign in, or send an API token as 'Authorization: Bearer …'")
    request.state.principal = found
    return found


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def authorize(principal: Principal, action: Action, resource: Resource = Resource()) -> None:
    """Raise :class:`AccessDenied` unless ``principal`` may do ``action`` on ``resource``."""
    decision = decide(principal, action, resource)
    if not decision.allowed:
        raise AccessDenied.of(decision, action)
