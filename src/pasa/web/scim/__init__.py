"""The SCIM 2.0 service provider under ``/scim/v2`` (RFC 7643 / 7644).

See :mod:`pasa.web.scim.endpoints` for the HTTP side, :mod:`pasa.service.scim` for the data
model (HR-sourced and SCIM-created users, groups per organisation) and ``docs/scim.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from pasa.web.scim.errors import ScimError


class ScimRoute(APIRoute):
    """Renders :class:`ScimError` as a SCIM Error response (the router cannot install
    application-wide exception handlers)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except ScimError as exc:
                return exc.response()

        return handler


router = APIRouter(prefix="/scim/v2", route_class=ScimRoute)

from pasa.web.scim import endpoints as _endpoints  # noqa: E402  (registers the routes)

__all__ = ["router"]
_ = _endpoints
