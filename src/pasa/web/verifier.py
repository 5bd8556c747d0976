"""OpenID4VP 1.0 verifier endpoints of the Digital Staff Passport.

- ``POST /passport/verifier/response`` — the wallet's direct_post (public: the wallet has no
  PASA sign-in; the body size limit and the per-client rate limit of
  :mod:`pasa.web.hardening` apply). 200 ``{}`` when accepted, else 400
  ``{"error", "error_description", "reason"}``.
- ``POST /api/v1/passport/verifications`` — the receiving organisation's identity team asks
  for a starter's credentials (``hr.import`` in that organisation): returns the
  ``openid4vp://`` request to show as a link or QR code.
- ``GET /api/v1/passport/verifications/{state}`` — the outcome (``people.read`` there).

The logic is in :mod:`pasa.service.passport_verifier`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pasa.domain.access import Action, Resource
from pasa.domain.errors import NotFoundError
from pasa.passport.openid4vp import DEFAULT_QUERY_IDS, RESPONSE_PATH
from pasa.service import passport_verifier as svc
from pasa.web.api.problems import problem_response, responses
from pasa.web.passport import NO_STORE, issuer_of
from pasa.web.security import AccessDenied, CurrentPrincipal, authorize, clock_of, engine_of

router = APIRouter()


@router.post(RESPONSE_PATH, include_in_schema=False)
async def direct_post(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return JSONResponse(
            {
                "error": "invalid_request",
                "error_description": "The response must be application/x-www-form-urlencoded.",
                "reason": "content_type",
            },
            status_code=400,
            headers=NO_STORE,
        )
    body = await request.body()
    outcome = await run_in_threadpool(
        svc.receive_response,
        engine_of(request),
        body,
        public_url=issuer_of(request),
        now=clock_of(request).now(),
    )
    return JSONResponse(
        outcome.body(), status_code=200 if outcome.accepted else 400, headers=NO_STORE
    )


class VerificationRequest(BaseModel):
    """An expected starter at ``organisation``: who, from when, in which post."""

    model_config = ConfigDict(extra="forbid")

    organisation: str = Field(pattern=r"^[A-Z0-9]{3,6}$", description="ODS code")
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    start_date: dt.date
    position_number: str = Field(min_length=1, max_length=40)
    credentials: list[str] = Field(default_factory=lambda: list(DEFAULT_QUERY_IDS))


# The API's documented errors (401/403/404/422 as problem+json), as on every /api/v1 route.
API_ERRORS = responses(400, 401, 403, 404, 422)


@router.post(
    "/api/v1/passport/verifications", tags=["passport"], status_code=201, responses=API_ERRORS
)
def create_verification(
    body: VerificationRequest, request: Request, principal: CurrentPrincipal
) -> Any:
    authorize(principal, Action.IMPORT_HR, Resource.of(body.organisation))
    try:
        new = svc.create_request(
            engine_of(request),
            organisation=body.organisation,
            given_name=body.given_name,
            family_name=body.family_name,
            start_date=body.start_date,
            position_number=body.position_number,
            query_ids=body.credentials,
            actor=principal.subject,
            public_url=issuer_of(request),
            now=clock_of(request).now(),
        )
    except svc.VerifierError as exc:
        return problem_response(422, str(exc))
    except NotFoundError as exc:
        return problem_response(404, str(exc))
    return {
        "state": new.state,
        "request_uri": new.uri,
        "client_id": new.client_id,
        "expires_at": new.expires_at.isoformat(),
    }


@router.get("/api/v1/passport/verifications/{state}", tags=["passport"], responses=API_ERRORS)
def read_verification(state: str, request: Request, principal: CurrentPrincipal) -> Any:
    try:
        outcome = svc.session_outcome(engine_of(request), state)
    except NotFoundError:
        raise AccessDenied(404, "not found") from None
    authorize(principal, Action.READ_PEOPLE, Resource.of(outcome["organisation"]))
    return outcome
