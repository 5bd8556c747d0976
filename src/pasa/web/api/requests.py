"""Access requests: ask for an item of the policy's catalogue for a person, decide it stage by
stage, withdraw it.

Listing and reading are ``access.read`` (one's own requests, one's reports', one's system's,
the organisation's); submitting is ``access.request`` on the person; deciding is
``access.approve`` and then the approval route itself (the waiting stage, separation of
duties: nobody decides a request they made or one for themselves). A request approved at its
last stage becomes a time-bound grant and the person is planned at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal
from pasa.domain.errors import NotFoundError
from pasa.domain.requests import TERMINAL, RequestError
from pasa.service import access_requests
from pasa.service.access_requests import RequestRefused, RequestView
from pasa.web.api.common import (
    MAX_ID,
    EngineDep,
    Id,
    Instant,
    Page,
    Paging,
    authorize_list,
    int_key,
    not_found,
    person_resource,
)
from pasa.web.api.problems import ApiProblem, responses
from pasa.web.security import CurrentPrincipal, authorize, clock_of

router = APIRouter(tags=["requests"])

RequestState = Literal[
    "awaiting_line_manager",
    "awaiting_system_owner",
    "approved",
    "rejected",
    "withdrawn",
    "expired",
]


class DecisionOut(BaseModel):
    stage: str
    decided_by: str
    approved: bool
    reason: str
    by_request: bool = Field(description="the line manager's stage, given by their asking")
    decided_at: Instant


class RequestOut(BaseModel):
    id: int
    person_id: int
    item: str = Field(description="key of the catalogue item (policy 'requestable')")
    target: str
    kind: str | None = Field(description="group, app_role or door_zone; null: an account only")
    value: str
    justification: str
    valid_from: dt.date
    valid_to: dt.date | None
    requested_by: str
    state: str
    stages: list[str]
    waiting_for: str | None = Field(description="the stage waiting for a decision")
    due_at: Instant | None = Field(description="when the waiting stage's SLA runs out")
    escalated: bool
    submitted_at: Instant
    closed_at: Instant | None
    grant_id: int | None
    decisions: list[DecisionOut]


class RequestIn(BaseModel):
    """A request for a catalogue item for a person (the caller is the requester)."""

    model_config = ConfigDict(extra="forbid")

    person_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    item: Annotated[str, Field(min_length=1, max_length=60)]
    justification: Annotated[str, Field(min_length=1, max_length=2000)]
    valid_from: dt.date | None = Field(None, description="default: today")
    valid_to: dt.date | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: Annotated[str, Field(max_length=2000)] = Field(
        "", description="required to reject: the requester reads it"
    )


def _out(v: RequestView) -> RequestOut:
    return RequestOut(
        id=v.id,
        person_id=v.person_id,
        item=v.item_key,
        target=v.target,
        kind=v.kind,
        value=v.value,
        justification=v.justification,
        valid_from=v.valid_from,
        valid_to=v.valid_to,
        requested_by=v.requested_by,
        state=v.state.value,
        stages=[x.value for x in v.stages],
        waiting_for=v.current_stage.value if v.current_stage else None,
        due_at=v.due_at,
        escalated=v.escalated,
        submitted_at=v.submitted_at,
        closed_at=v.closed_at,
        grant_id=v.grant_id,
        decisions=[
            DecisionOut(
                stage=d.stage.value,
                decided_by=d.by,
                approved=d.approved,
                reason=d.reason,
                by_request=d.by_request,
                decided_at=d.at,
            )
            for d in v.decisions
        ],
    )


def _now_today(request: Request) -> tuple[dt.datetime, dt.date]:
    now = clock_of(request).now()
    return now, local_date(now, get_settings().timezone)


def _visible(engine: EngineDep, principal: Principal, request_id: int) -> RequestView:
    """The request, or the same 404 as for one that does not exist."""
    try:
        view = access_requests.get_request(engine, request_id)
    except NotFoundError:
        raise not_found() from None
    mine = view.requested_by == principal.subject
    if not mine:
        authorize(principal, Action.READ_ACCESS, access_requests.resource_of(view))
    return view


@router.get("/requests", response_model=Page[RequestOut], summary="List access requests")
def list_requests(
    principal: CurrentPrincipal,
    paging: Paging,
    engine: EngineDep,
    person_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only requests for this person")
    ] = None,
    state: Annotated[RequestState | None, Query(description="Only in this state")] = None,
) -> Page[RequestOut]:
    authorize_list(principal, Action.READ_ACCESS)
    items = access_requests.list_requests(
        engine,
        principal,
        after=int_key(paging),
        limit=paging.limit + 1,
        state=state,
        person_id=person_id,
    )
    return paging.page([_out(v) for v in items], lambda x: x.id)


@router.get("/requests/{request_id}", response_model=RequestOut, summary="One access request")
def get_request(request_id: Id, principal: CurrentPrincipal, engine: EngineDep) -> RequestOut:
    return _out(_visible(engine, principal, request_id))


@router.post(
    "/requests",
    response_model=RequestOut,
    status_code=201,
    summary="Ask for an item of the catalogue for a person",
)
def submit_request(
    body: RequestIn,
    principal: CurrentPrincipal,
    engine: EngineDep,
    request: Request,
    response: Response,
) -> RequestOut:
    with engine.connect() as conn:
        resource = person_resource(conn, body.person_id)
    if not resource.organisations:
        raise not_found()
    authorize(principal, Action.REQUEST_ACCESS, resource)
    now, today = _now_today(request)
    try:
        view = access_requests.submit(
            engine,
            principal,
            person_id=body.person_id,
            item_key=body.item,
            justification=body.justification,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            now=now,
            today=today,
        )
    except RequestError as exc:
        raise ApiProblem(422, str(exc)) from None
    response.headers["Location"] = f"/api/v1/requests/{view.id}"
    return _out(view)


@router.post(
    "/requests/{request_id}/decision",
    response_model=RequestOut,
    summary="Approve or reject the stage waiting for a decision",
    responses=responses(409),
)
def decide_request(
    request_id: Id,
    body: DecisionIn,
    principal: CurrentPrincipal,
    engine: EngineDep,
    request: Request,
) -> RequestOut:
    view = _visible(engine, principal, request_id)
    authorize(principal, Action.APPROVE_ACCESS, access_requests.resource_of(view))
    now, today = _now_today(request)
    try:
        decided = access_requests.decide_request(
            engine,
            principal,
            request_id,
            approve=body.approve,
            reason=body.reason,
            now=now,
            today=today,
        )
    except RequestRefused as exc:
        raise ApiProblem(403, str(exc)) from None
    except RequestError as exc:
        # Closed already: a conflict; otherwise the body was not enough (a rejection's reason).
        raise ApiProblem(409 if view.state in TERMINAL else 422, str(exc)) from None
    return _out(decided)


@router.post(
    "/requests/{request_id}/withdraw",
    response_model=RequestOut,
    summary="Withdraw a request still waiting (the requester, or the person it is for)",
    responses=responses(409),
)
def withdraw_request(
    request_id: Id, principal: CurrentPrincipal, engine: EngineDep, request: Request
) -> RequestOut:
    try:
        view = access_requests.get_request(engine, request_id)
    except NotFoundError:
        raise not_found() from None
    # Withdrawing for someone else asks the right to request for them (not to read).
    on_behalf = view.requested_by != principal.subject and view.person_id != principal.person_id
    if on_behalf:
        authorize(principal, Action.REQUEST_ACCESS, access_requests.resource_of(view))
    try:
        done = access_requests.withdraw(
            engine, principal, request_id, now=clock_of(request).now(), may_request_for=on_behalf
        )
    except RequestRefused as exc:
        raise ApiProblem(403, str(exc)) from None
    return _out(done)
