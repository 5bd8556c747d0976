"""The REST API under ``/api/v1``: one router, resources in their own modules.

Every endpoint authorizes with :func:`pasa.web.security.authorize`; errors are RFC 9457
problems (:mod:`pasa.web.api.problems`, installed on the application by ``install``).
"""

from __future__ import annotations

from fastapi import APIRouter

from pasa.web.api.problems import responses

router = APIRouter(prefix="/api/v1", responses=responses(400, 401, 403, 404, 422))


def _register() -> None:
    from pasa.web.api import (
        accounts,
        audit,
        benefits,
        grants,
        hr_push,
        imports,
        operations,
        organisations,
        people,
        positions,
        requests,
        targets,
        tasks,
    )

    for module in (
        people,
        positions,
        organisations,
        targets,
        accounts,
        grants,
        requests,
        operations,
        tasks,
        imports,
        hr_push,
        audit,
        benefits,
    ):
        router.include_router(module.router)


_register()
