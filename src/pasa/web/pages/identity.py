"""The identity team's pages: the exceptions board and person search with a full timeline
(issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.pages.rendering import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
