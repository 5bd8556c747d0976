"""My credentials: the Digital Staff Passport credentials held, their status, and an offer QR
code to collect them into a wallet (issue 7)."""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.pages.rendering import PageRoute

router = APIRouter(include_in_schema=False, route_class=PageRoute)
