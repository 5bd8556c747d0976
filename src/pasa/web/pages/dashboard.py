"""The benefits dashboard: time to access, ready by 08:00 on day one, automation rate,
open exceptions and staff time saved against a configurable baseline (issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.pages.rendering import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
