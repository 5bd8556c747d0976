"""Access requests and approvals: a line manager asks for extra access for a report from the
catalogue, approvers decide, everyone follows the request to ready (issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.pages.rendering import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
