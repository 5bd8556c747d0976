"""Readiness per starter (every system and door zone: ready / pending / manual task / failed,
live) and the day-one credential handover (issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.pages.rendering import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
