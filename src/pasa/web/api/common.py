"""What every REST resource shares: pages and cursors, ETags, and who may see what.

* **Pages**: every list answers ``{"items": [...], "next": URL | null}``, ordered by a stable
  key; ``next`` repeats the request's filters with an opaque ``cursor`` (the last key,
  encoded) and is ``null`` on the last page. ``limit`` is 1 to 200 (default 50).
* **ETags**: single resources carry a strong ``ETag`` (a hash of their representation);
  state changes accept ``If-Match`` and answer 412 when it is not the current ETag.
* **Visibility**: :func:`visibility` turns a principal and an action into what a list may
  show (everything; whole organisations; some people; some targets), the same decision
  :func:`pasa.domain.access.decide` makes for one resource, as a SQL filter.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.engine import Connection, Engine

from pasa.domain.access import (
    ROLE_ACTIONS,
    SCOPE_ACTIONS,
    Action,
    Principal,
    Resource,
    Role,
)
from pasa.store import schema as s
from pasa.web.api.problems import ApiProblem
from pasa.web.security import AccessDenied, authorize, engine_of

T = TypeVar("T")

MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases

EngineDep = Annotated[Engine, Depends(engine_of)]


def _utc(value: Any) -> Any:
    """SQLite gives naive timestamps (stored in UTC): the API always states the offset."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


Id = Annotated[int, Path(ge=1, le=MAX_ID, description="The object's id")]


# An instant in time, always with its UTC offset (RFC 3339 ``date-time``).
Instant = Annotated[dt.datetime, BeforeValidator(_utc)]

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, and the URL of the next page (``null``: the last)."""

    items: list[T]
    next: str | None = Field(None, description="URL of the next page; null on the last page")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    after: Any  # the last key of the previous page, or None for the first page
    request: Request

    def page(self, items: Sequence[T], key: Callable[[T], Any]) -> Page[T]:
        """A page from up to ``limit + 1`` items fetched after the cursor."""
        more = len(items) > self.limit
        shown = list(items[: self.limit])
        following = None
        if more and shown:
            cursor = encode_cursor(key(shown[-1]))
            following = str(self.request.url.include_query_params(cursor=cursor))
        return Page[T](items=shown, next=following)


def encode_cursor(key: Any) -> str:
    raw = json.dumps({"k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict) or "k" not in data:
            raise ValueError
        return data["k"]
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiProblem(
            400, "the cursor is not one this API issued: use the 'next' link of a page"
        ) from None


def page_request(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT})")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=500, description="Opaque cursor from the 'next' link of a page"),
    ] = None,
) -> PageRequest:
    return PageRequest(limit, decode_cursor(cursor) if cursor else None, request)


Paging = Annotated[PageRequest, Depends(page_request)]


def int_key(paging: PageRequest) -> int | None:
    """The cursor of an integer-keyed list (a 400 problem if it is not one)."""
    if paging.after is None:
        return None
    if (
        not isinstance(paging.after, int)
        or isinstance(paging.after, bool)
        or not -1 <= paging.after <= MAX_ID
    ):
        raise ApiProblem(400, "the cursor does not belong to this list")
    return paging.after


def str_key(paging: PageRequest) -> str | None:
    if paging.after is None:
        return None
    if not isinstance(paging.after, str):
        raise ApiProblem(400, "the cursor does not belong to this list")
    return paging.after


# --- ETags --------------------------------------------------------------------------------


def etag_of(model: BaseModel) -> str:
    digest = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:32]
    return f'"{digest}"'


def with_etag(response: Response, model: BaseModel) -> None:
    response.headers["ETag"] = etag_of(model)
    response.headers["Cache-Control"] = "private, no-cache"


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag this change is based on; 412 when it is no longer current",
    ),
]


def check_if_match(if_match: str | None, current: BaseModel) -> None:
    """412 when ``If-Match`` was sent and names no current representation of the resource."""
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in wanted or etag_of(current) in wanted:
        return
    raise ApiProblem(
        412,
        "the resource has changed since you read it (If-Match does not match its current "
        f"ETag {etag_of(current)}); read it again and retry",
    )


# --- visibility ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visibility:
    """What a list may show a principal for one action."""

    everything: bool = False
    organisations: frozenset[str] = frozenset()  # whole organisations (ODS codes)
    people: frozenset[int] = frozenset()  # individual people (themselves, their reports)
    # System owners: (target key, organisation) pairs.
    targets: frozenset[tuple[str, str | None]] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.everything or self.organisations or self.people or self.targets)

    @property
    def org_wide(self) -> bool:
        return self.everything or bool(self.organisations)

    def sees_org(self, ods_code: str) -> bool:
        return self.everything or ods_code in self.organisations


def visibility(principal: Principal, action: Action) -> Visibility:
    """What ``principal`` may see for ``action`` in a list (mirrors ``decide``)."""
    if principal.is_token:
        assert principal.scopes is not None
        allowed = any(action in SCOPE_ACTIONS[scope] for scope in principal.scopes)
        if not allowed or principal.token_organisation is None:
            return Visibility()
        return Visibility(organisations=frozenset({principal.token_organisation}))
    orgs: set[str] = set()
    targets: set[tuple[str, str | None]] = set()
    for binding in principal.bindings:
        if action not in ROLE_ACTIONS[binding.role]:
            continue
        if binding.role is Role.SYSTEM_OWNER:
            if binding.target is not None:
                targets.add((binding.target, binding.organisation))
        elif binding.organisation is None:
            return Visibility(everything=True)
        else:
            orgs.add(binding.organisation)
    people: set[int] = set()
    if principal.person_id is not None and action in ROLE_ACTIONS[Role.STAFF]:
        people.add(principal.person_id)
    if action in ROLE_ACTIONS[Role.LINE_MANAGER]:
        people.update(principal.reports)
    return Visibility(False, frozenset(orgs), frozenset(people), frozenset(targets))


def authorize_list(principal: Principal, action: Action) -> Visibility:
    """The visibility of a list, or the refusal (403) when nothing at all may be seen."""
    seen = visibility(principal, action)
    if seen.empty:
        authorize(principal, action, Resource())
    return seen


def person_in_orgs(person_col: sa.ColumnElement[Any], orgs: frozenset[str]) -> Any:
    a, o = s.assignment, s.organisation
    return sa.exists(
        sa.select(a.c.id)
        .select_from(a.join(o, o.c.id == a.c.organisation_id))
        .where(a.c.person_id == person_col, o.c.ods_code.in_(sorted(orgs)))
    )


def person_filter(
    seen: Visibility,
    person_col: sa.ColumnElement[Any],
    target_col: sa.ColumnElement[Any] | None = None,
) -> Any:
    """A SQL condition: rows about people (and targets) ``seen`` may see."""
    if seen.everything:
        return sa.true()
    terms: list[Any] = []
    if seen.organisations:
        terms.append(person_in_orgs(person_col, seen.organisations))
    if seen.people:
        terms.append(person_col.in_(sorted(seen.people)))
    if target_col is not None:
        for key, org in sorted(seen.targets, key=lambda t: (t[0], t[1] or "")):
            term = target_col == key
            if org is not None:
                term = sa.and_(term, person_in_orgs(person_col, frozenset({org})))
            terms.append(term)
    return sa.or_(*terms) if terms else sa.false()


def person_organisations(conn: Connection, person_id: int) -> frozenset[str]:
    """The ODS codes a person holds (or held) assignments in."""
    a, o = s.assignment, s.organisation
    return frozenset(
        conn.scalars(
            sa.select(o.c.ods_code)
            .select_from(a.join(o, o.c.id == a.c.organisation_id))
            .where(a.c.person_id == person_id)
            .distinct()
        )
    )


def person_resource(conn: Connection, person_id: int, target: str | None = None) -> Resource:
    return Resource.of(person_organisations(conn, person_id), person_id=person_id, target=target)


def not_found() -> AccessDenied:
    """A missing resource, answered exactly as one the caller may not know of."""
    return AccessDenied(404, "not found")
