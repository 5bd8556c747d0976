"""Access requests and their approval route (pure: no I/O).

A request asks for one catalogue item (``requestable`` in the policy) for one person. It
passes through the item's approval stages in order — the person's line manager, then the
owner of the target system — and ends approved, rejected, withdrawn or expired::

    submitted → awaiting line manager → awaiting system owner → approved
                        ↘ rejected / withdrawn / expired (from any waiting state)

Separation of duties: nobody decides a request they made or a request for themselves. A line
manager who asks for a report has thereby given the line manager's approval when a later stage
(the system owner) remains: that stage is recorded as decided *by the request*, so a stage is
never passed without a named decision, and someone other than the requester always approves.
When the line manager is the only stage and asks themselves, the identity team decides.

A stage waiting past its SLA sends the approver a reminder; past twice its SLA it is
escalated to the organisation's identity team (who may then decide any stage).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from pasa.domain.access import Principal, Role
from pasa.domain.errors import PasaError

# A request nobody has finished deciding lapses after this long (the need has usually gone).
EXPIRE_AFTER = dt.timedelta(days=30)
MAX_JUSTIFICATION = 2000


class RequestError(PasaError):
    """A request cannot be submitted or changed as asked (one sentence saying why)."""


class Stage(StrEnum):
    LINE_MANAGER = "line_manager"
    SYSTEM_OWNER = "system_owner"


class State(StrEnum):
    SUBMITTED = "submitted"
    AWAITING_LINE_MANAGER = "awaiting_line_manager"
    AWAITING_SYSTEM_OWNER = "awaiting_system_owner"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


TERMINAL: frozenset[State] = frozenset(
    {State.APPROVED, State.REJECTED, State.WITHDRAWN, State.EXPIRED}
)
_AWAITING = {
    Stage.LINE_MANAGER: State.AWAITING_LINE_MANAGER,
    Stage.SYSTEM_OWNER: State.AWAITING_SYSTEM_OWNER,
}
STAGE_NAMES = {Stage.LINE_MANAGER: "line manager", Stage.SYSTEM_OWNER: "system owner"}


class Chase(StrEnum):
    """What a waiting stage needs now."""

    NONE = "none"
    REMINDER = "reminder"  # past its SLA: remind the approver
    ESCALATION = "escalation"  # past twice its SLA: the identity team takes it up


@dataclass(frozen=True, slots=True)
class StageDecision:
    stage: Stage
    by: str
    approved: bool
    at: dt.datetime
    reason: str = ""
    by_request: bool = False  # the line manager's stage, given by asking


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """The facts the route needs: who asked, for whom, what, and the decisions so far."""

    requester: str  # sign-in subject
    requester_person_id: int | None
    person_id: int  # who the access is for
    organisations: frozenset[str]  # the person's organisations (ODS codes)
    target: str
    stages: tuple[Stage, ...]
    sla_hours: int
    submitted_at: dt.datetime
    state: State = State.SUBMITTED
    decisions: tuple[StageDecision, ...] = ()
    stage_since: dt.datetime | None = None  # when the current stage started waiting
    closed_by: str | None = None

    @property
    def current_stage(self) -> Stage | None:
        """The stage waiting for a decision (``None`` once decided or closed)."""
        if self.state in TERMINAL or self.state is State.SUBMITTED:
            return None
        return self.stages[sum(1 for d in self.decisions if d.approved)]

    @property
    def approvals(self) -> tuple[StageDecision, ...]:
        return tuple(d for d in self.decisions if d.approved)


def _advance(request: AccessRequest, at: dt.datetime) -> AccessRequest:
    done = len(request.approvals)
    if done >= len(request.stages):
        return replace(request, state=State.APPROVED, stage_since=None)
    return replace(request, state=_AWAITING[request.stages[done]], stage_since=at)


def is_line_manager(principal: Principal, person_id: int) -> bool:
    return person_id in principal.reports


def _identity_team(principal: Principal, organisations: frozenset[str]) -> bool:
    for b in principal.bindings:
        if b.role is Role.PLATFORM_ADMIN and b.organisation is None:
            return True
        if b.role in (Role.ORG_ADMIN, Role.PLATFORM_ADMIN) and b.organisation in organisations:
            return True
    return False


def owns_target(principal: Principal, target: str, organisations: frozenset[str]) -> bool:
    return any(
        b.role is Role.SYSTEM_OWNER
        and b.target == target
        and (b.organisation is None or b.organisation in organisations)
        for b in principal.bindings
    )


def submit(
    *,
    requester: Principal,
    person_id: int,
    organisations: frozenset[str],
    target: str,
    stages: tuple[Stage, ...],
    sla_hours: int,
    at: dt.datetime,
) -> AccessRequest:
    """A new request, waiting for its first stage that the asking does not itself give."""
    if not stages:
        raise RequestError("a catalogue item needs at least one approval stage")
    request = AccessRequest(
        requester=requester.subject,
        requester_person_id=requester.person_id,
        person_id=person_id,
        organisations=organisations,
        target=target,
        stages=stages,
        sla_hours=sla_hours,
        submitted_at=at,
    )
    if (
        len(stages) > 1
        and stages[0] is Stage.LINE_MANAGER
        and is_line_manager(requester, person_id)
    ):
        request = replace(
            request,
            decisions=(
                StageDecision(Stage.LINE_MANAGER, requester.subject, True, at, by_request=True),
            ),
        )
    return _advance(request, at)


def may_decide(request: AccessRequest, principal: Principal) -> tuple[bool, str]:
    """May ``principal`` decide the waiting stage? With the reason either way."""
    stage = request.current_stage
    if stage is None:
        return False, f"the request is {request.state.value.replace('_', ' ')}: nothing to decide"
    if principal.subject == request.requester:
        return False, "you made this request: someone else must decide it (separation of duties)"
    if principal.person_id is not None and principal.person_id == request.person_id:
        return False, "the request is for you: someone else must decide it (separation of duties)"
    if principal.is_token:
        return False, "a request is decided by a person, not an API token"
    if stage is Stage.LINE_MANAGER and is_line_manager(principal, request.person_id):
        return True, "line manager of the person"
    if stage is Stage.SYSTEM_OWNER and owns_target(
        principal, request.target, request.organisations
    ):
        return True, f"system owner of {request.target}"
    if _identity_team(principal, request.organisations):
        return True, "identity team of the organisation"
    return False, f"waiting for the {STAGE_NAMES[stage]}, which you are not for this request"


def decide(
    request: AccessRequest, principal: Principal, *, approve: bool, reason: str, at: dt.datetime
) -> AccessRequest:
    """Record a decision on the waiting stage; a rejection ends the request."""
    allowed, why = may_decide(request, principal)
    if not allowed:
        raise RequestError(why)
    if not approve and not reason.strip():
        raise RequestError("say why the request is rejected: the requester will read it")
    stage = request.current_stage
    assert stage is not None
    decision = StageDecision(stage, principal.subject, approve, at, reason.strip())
    request = replace(request, decisions=(*request.decisions, decision))
    if not approve:
        return replace(request, state=State.REJECTED, stage_since=None, closed_by=principal.subject)
    return _advance(request, at)


def withdraw(
    request: AccessRequest, principal: Principal, *, may_request_for: bool = False
) -> AccessRequest:
    """Take back a request still waiting: the requester, the person it is for, or anyone who
    may ask for access for that person (``may_request_for``: their line manager, the
    identity team)."""
    if request.state in TERMINAL:
        raise RequestError(f"the request is already {request.state.value}: it cannot be withdrawn")
    if (
        principal.subject != request.requester
        and principal.person_id != request.person_id
        and not may_request_for
    ):
        raise RequestError(
            "only the requester, the person it is for or someone who may ask for access for "
            "them may withdraw a request"
        )
    return replace(request, state=State.WITHDRAWN, stage_since=None, closed_by=principal.subject)


def lapsed(request: AccessRequest, now: dt.datetime, ends: dt.date | None, today: dt.date) -> bool:
    """Has a waiting request expired (undecided too long, or its end date has passed)?"""
    if request.state in TERMINAL:
        return False
    return now - request.submitted_at >= EXPIRE_AFTER or (ends is not None and ends < today)


def expire(request: AccessRequest) -> AccessRequest:
    if request.state in TERMINAL:
        raise RequestError(f"the request is already {request.state.value}")
    return replace(request, state=State.EXPIRED, stage_since=None, closed_by="scheduler")


def due_at(request: AccessRequest) -> dt.datetime | None:
    """When the waiting stage's SLA runs out."""
    if request.current_stage is None or request.stage_since is None:
        return None
    return request.stage_since + dt.timedelta(hours=request.sla_hours)


def chase(request: AccessRequest, now: dt.datetime) -> Chase:
    """Reminder past the SLA, escalation past twice the SLA, else nothing."""
    due = due_at(request)
    if due is None or now < due:
        return Chase.NONE
    if now >= due + dt.timedelta(hours=request.sla_hours):
        return Chase.ESCALATION
    return Chase.REMINDER


def check_dates(
    *, starts: dt.date, ends: dt.date | None, today: dt.date, max_days: int | None
) -> str | None:
    """What is wrong with the requested dates, in a sentence (``None``: nothing)."""
    if starts < today:
        return f"the start date {starts:%-d %B %Y} is in the past"
    if ends is not None and ends < starts:
        return f"the end date {ends:%-d %B %Y} is before the start date {starts:%-d %B %Y}"
    if max_days is not None:
        if ends is None:
            return f"this access needs an end date, at most {max_days} days after the start"
        if (ends - starts).days > max_days:
            latest = starts + dt.timedelta(days=max_days)
            return (
                f"this access may be granted for at most {max_days} days: "
                f"end it on or before {latest:%-d %B %Y}"
            )
    return None
