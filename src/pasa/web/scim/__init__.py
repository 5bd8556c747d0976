"""The SCIM 2.0 service provider under ``/scim/v2`` (RFC 7643 / 7644)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/scim/v2")
