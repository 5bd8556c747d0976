"""Rendering pages: the Jinja2 environment (NHS.UK frontend macros), the layout's context,
and readable NHS.UK-style error pages.

Every page route is a :class:`PageRoute`: a refusal from :mod:`pasa.web.security` becomes a
page rather than a JSON problem — 401 sends the browser to the landing page to sign in (and
back afterwards), 403 and 404 render ``error.html`` with the status. Unknown paths asked for by
a browser get the same 404 page (:func:`install_error_pages`).
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import ChainableUndefined, ChoiceLoader, Environment, FileSystemLoader, PackageLoader
from starlette.exceptions import HTTPException as StarletteHTTPException

from pasa.config import get_settings
from pasa.domain.access import Principal, Role
from pasa.web.security import AccessDenied
from pasa.web.sessions import csrf_field

WEB = Path(__file__).resolve().parent.parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
# Paths whose callers are programs: their errors stay in their own protocol.
_MACHINE_PREFIXES = ("/api/", "/scim/", "/auth/", "/static/", "/assets/", "/.well-known/")

_TITLES = {
    401: "Sign in to continue",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "This page cannot be used that way",
}


def local_time(value: dt.datetime | None) -> dt.datetime | None:
    """An instant as the organisation's wall-clock time (``| local`` in templates): staff read
    "14:05" in London time, whatever the season. Naive values are UTC (SQLite returns them)."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(ZoneInfo(get_settings().timezone))


def environment() -> Environment:
    """Jinja2 with PASA's templates first, then the ``nhsuk_frontend_jinja`` macros."""
    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(TEMPLATES), PackageLoader("nhsuk_frontend_jinja", "templates")]
        ),
        # The NHS.UK macros read optional nested parameters (``params.a.b``).
        undefined=ChainableUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    return env


templates = Jinja2Templates(env=environment())


def role_names(principal: Principal | None) -> list[str]:
    if principal is None:
        return []
    words = {
        Role.PLATFORM_ADMIN: "platform administrator",
        Role.ORG_ADMIN: "identity team",
        Role.SYSTEM_OWNER: "system owner",
        Role.AUDITOR: "auditor",
        Role.LINE_MANAGER: "line manager",
        Role.STAFF: "staff member",
    }
    return [words[r] for r in sorted(principal.roles())]


def navigation(principal: Principal | None, current: str) -> list[dict[str, Any]]:
    """The header's menu: only the pages this principal can use."""
    if principal is None:
        return []
    roles = principal.roles()
    identity_team = bool(roles & {Role.ORG_ADMIN, Role.PLATFORM_ADMIN})
    items = [("/home", "Home")]
    if principal.reports:
        items.append(("/team", "My team"))
    if principal.person_id is not None:
        items.append(("/my-access", "My access"))
    if principal.person_id is not None or principal.reports or Role.SYSTEM_OWNER in roles:
        items.append(("/requests", "Requests"))
    if principal.person_id is not None:
        items.append(("/my-credentials", "My credentials"))
    if identity_team:
        items += [("/exceptions", "Exceptions"), ("/rotations", "Rotations"), ("/policy", "Policy")]
        items.append(("/passport/verify", "Passport"))
    if identity_team or Role.AUDITOR in roles:
        items += [("/people", "People"), ("/dashboard", "Benefits")]
    return [{"href": href, "text": text, "current": href == current} for href, text in items]


def render(
    request: Request,
    template: str,
    *,
    title: str,
    principal: Principal | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page in the NHS.UK layout; ``csrf`` is the hidden field every form carries."""
    signed_in = bool((request.scope.get("session") or {}).get("subject"))
    response = templates.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "principal": principal,
            "signed_in": signed_in,
            "roles": role_names(principal),
            "nav": navigation(principal, request.url.path),
            "csrf": csrf_field(request) if "session" in request.scope else "",
            **context,
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, status: int, detail: str) -> Response:
    if status == 401:
        query = urlencode({"next": request.url.path})
        return RedirectResponse(f"/?{query}", status_code=303)
    principal = getattr(request.state, "principal", None)
    return render(
        request,
        "error.html",
        title=_TITLES.get(status, "Something went wrong"),
        principal=principal if isinstance(principal, Principal) else None,
        status=status,
        code=status,
        detail=detail,
    )


class PageRoute(APIRoute):
    """A route whose refusals are pages (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AccessDenied as exc:
                return error_page(request, exc.status, exc.detail)

        return page_handler


def wants_page(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(_MACHINE_PREFIXES) and "text/html" in request.headers.get(
        "accept", ""
    )


def install_error_pages(app: FastAPI) -> None:
    """Browsers asking for a path with no page get the 404 (or 405) page; programs keep the
    application's own error responses."""
    previous = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        if (
            wants_page(request)
            and isinstance(exc, StarletteHTTPException)
            and exc.status_code in (404, 405)
        ):
            return error_page(request, exc.status_code, "")
        response = previous(request, exc)
        result: Response = await response if inspect.isawaitable(response) else response
        return result

    app.add_exception_handler(StarletteHTTPException, http_error)
