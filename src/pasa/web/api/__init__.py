"""The REST API under ``/api/v1``: one router, resources in their own modules."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
