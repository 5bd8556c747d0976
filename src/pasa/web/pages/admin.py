"""Rotation batches (preview, approve) and the policy editor with what-if before saving
(issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.pages.rendering import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
