"""Targets (the systems PASA provisions into): read them, pause and resume them.

Reading is ``targets.read``, pausing and resuming ``targets.manage``; a system owner sees
and manages only the system they own. Pausing stops workers sending operations to the
target (they wait, nothing is lost); resuming lets them go again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from pasa.domain.access import Action, Principal, Resource
from pasa.engine.tasks import TargetState, list_targets, set_paused
from pasa.web.api.common import (
    EngineDep,
    IfMatch,
    Page,
    Paging,
    authorize_list,
    check_if_match,
    not_found,
    str_key,
    with_etag,
)
from pasa.web.api.problems import responses
from pasa.web.security import CurrentPrincipal, authorize

router = APIRouter(tags=["targets"])


class TargetOut(BaseModel):
    key: str
    name: str
    connector: str
    paused: bool
    concurrency: int | None
    rate_per_minute: float | None
    pending_operations: int


def _out(t: TargetState) -> TargetOut:
    return TargetOut(
        key=t.key,
        name=t.name,
        connector=t.connector,
        paused=t.paused,
        concurrency=t.concurrency,
        rate_per_minute=t.rate_per_minute,
        pending_operations=t.pending,
    )


@router.get("/targets", response_model=Page[TargetOut], summary="List targets")
def list_all(principal: CurrentPrincipal, paging: Paging, engine: EngineDep) -> Page[TargetOut]:
    seen = authorize_list(principal, Action.READ_TARGETS)
    after = str_key(paging)
    owned = {key for key, _ in seen.targets}
    items = [
        _out(t)
        for t in list_targets(engine)
        if (seen.org_wide or t.key in owned) and (after is None or t.key > after)
    ]
    return paging.page(items[: paging.limit + 1], lambda x: x.key)


def _one(engine: EngineDep, principal: Principal, key: str, action: Action) -> TargetOut:
    authorize(principal, action, Resource.of(target=key))
    for t in list_targets(engine):
        if t.key == key:
            return _out(t)
    raise not_found()


@router.get("/targets/{key}", response_model=TargetOut, summary="One target")
def get_target(
    key: str, principal: CurrentPrincipal, engine: EngineDep, response: Response
) -> TargetOut:
    out = _one(engine, principal, key, Action.READ_TARGETS)
    with_etag(response, out)
    return out


def _pause(
    request: Request,
    response: Response,
    engine: EngineDep,
    principal: Principal,
    key: str,
    if_match: str | None,
    paused: bool,
) -> TargetOut:
    current = _one(engine, principal, key, Action.MANAGE_TARGETS)
    check_if_match(if_match, current)
    set_paused(engine, key, paused, actor=principal.subject)
    out = _one(engine, principal, key, Action.MANAGE_TARGETS)
    with_etag(response, out)
    return out


@router.post(
    "/targets/{key}/pause",
    response_model=TargetOut,
    summary="Pause a target (operations wait)",
    responses=responses(412),
)
def pause(
    key: str,
    principal: CurrentPrincipal,
    engine: EngineDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> TargetOut:
    return _pause(request, response, engine, principal, key, if_match, True)


@router.post(
    "/targets/{key}/resume",
    response_model=TargetOut,
    summary="Resume a paused target",
    responses=responses(412),
)
def resume(
    key: str,
    principal: CurrentPrincipal,
    engine: EngineDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> TargetOut:
    return _pause(request, response, engine, principal, key, if_match, False)
