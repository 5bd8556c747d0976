"""SCIM 2.0 endpoints: Users, Groups, Bulk and the discovery endpoints.

* Resource endpoints need an API token with the ``scim`` scope (``CurrentPrincipal`` +
  ``authorize(SCIM_READ | SCIM_WRITE)`` on the token's organisation); a token sees only its
  own organisation, and another organisation's resource is *not found*.
* Discovery (``/ServiceProviderConfig``, ``/Schemas``, ``/ResourceTypes``) is public, as
  RFC 7644 §4 allows: it describes the service, never data.
* Single resources carry ``ETag`` (= ``meta.version``); ``If-Match`` on PUT/PATCH/DELETE
  answers 412 when stale; ``If-None-Match`` on GET answers 304 when current.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from scim2_models import Context, Error, PatchOp, ResponseParameters, SCIMException
from sqlalchemy.engine import Connection, Engine

from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.access import Action, Principal, Resource
from pasa.service import scim as svc
from pasa.web.scim import models as m
from pasa.web.scim import router
from pasa.web.scim.errors import SCIM_MEDIA_TYPE, ScimError, invalid_value
from pasa.web.security import AccessDenied, CurrentPrincipal, authorize, clock_of, engine_of


def scim_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=SCIM_MEDIA_TYPE, headers=headers)


def _absolute(request: Request, doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("meta")
    if isinstance(meta, dict) and str(meta.get("location", "")).startswith("/"):
        doc = {**doc, "meta": {**meta, "location": _base(request) + meta["location"]}}
    return doc


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


# --- discovery (public) -----------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
def service_provider_config(request: Request) -> JSONResponse:
    return scim_response(
        _absolute(request, m.service_provider_config().model_dump(scim_ctx=Context.DEFAULT))
    )


def _listing(resources: list[dict[str, Any]], total: int, start: int = 1) -> dict[str, Any]:
    return {
        "schemas": [m.LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@router.get("/Schemas")
def schemas(request: Request) -> JSONResponse:
    docs = [_absolute(request, x.model_dump()) for x in m.SCHEMAS.values()]
    return scim_response(_listing(docs, len(docs)))


@router.get("/Schemas/{schema_id}")
def schema(request: Request, schema_id: str) -> JSONResponse:
    if schema_id not in m.SCHEMAS:
        raise ScimError(404, f"no schema '{schema_id}' (schemas: {', '.join(m.SCHEMAS)})")
    return scim_response(_absolute(request, m.SCHEMAS[schema_id].model_dump()))


@router.get("/ResourceTypes")
def resource_types(request: Request) -> JSONResponse:
    docs = [_absolute(request, x.model_dump()) for x in m.RESOURCE_TYPES.values()]
    return scim_response(_listing(docs, len(docs)))


@router.get("/ResourceTypes/{type_id}")
def resource_type(request: Request, type_id: str) -> JSONResponse:
    if type_id not in m.RESOURCE_TYPES:
        raise ScimError(404, f"no resource type '{type_id}' (resource types: User, Group)")
    return scim_response(_absolute(request, m.RESOURCE_TYPES[type_id].model_dump()))


# --- the caller and the organisation ----------------------------------------------------------


def _scope(request: Request, principal: Principal, action: Action, conn: Connection) -> svc.Scope:
    if not principal.is_token or not principal.token_organisation:
        raise AccessDenied(403, "SCIM needs an API token with the 'scim' scope")
    authorize(principal, action, Resource.of(principal.token_organisation))
    today = local_date(clock_of(request).now(), get_settings().timezone)
    return svc.scope_for(
        conn,
        principal.token_organisation,
        actor=principal.subject,
        base_url=_base(request),
        today=today,
    )


# --- request parsing ------------------------------------------------------------------------


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise ScimError(400, f"the body is not JSON: {exc}", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    return body


def _validation_error(exc: pydantic.ValidationError) -> ScimError:
    error = Error.from_validation_errors(exc)[0]
    return ScimError(int(error.status or 400), error.detail or str(exc), error.scim_type)


def _scim_exception(exc: SCIMException) -> ScimError:
    return ScimError(exc.status, exc.detail, exc.scim_type or None)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # User | Group
    endpoint: str  # Users | Groups
    model: type[Any]
    list: Callable[..., tuple[int, list[dict[str, Any]]]]
    get: Callable[[Connection, svc.Scope, str], dict[str, Any]]
    create: Callable[[Connection, svc.Scope, dict[str, Any]], dict[str, Any]]
    replace: Callable[..., dict[str, Any]]
    delete: Callable[..., None]


KINDS = {
    "Users": Kind(
        "User",
        "Users",
        m.UserModel,
        svc.list_users,
        svc.get_user,
        svc.create_user,
        svc.replace_user,
        svc.delete_user,
    ),
    "Groups": Kind(
        "Group",
        "Groups",
        m.GroupModel,
        svc.list_groups,
        svc.get_group,
        svc.create_group,
        svc.replace_group,
        svc.delete_group,
    ),
}


def _incoming(kind: Kind, body: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Validate a resource body against the published schema; the writable part of it."""
    try:
        model = kind.model.model_validate(body, scim_ctx=ctx)
    except pydantic.ValidationError as exc:
        raise _validation_error(exc) from None
    out: dict[str, Any] = model.model_dump(scim_ctx=ctx)
    return out


def _parameters(attributes: str | None, excluded: str | None) -> ResponseParameters[Any] | None:
    if not attributes and not excluded:
        return None
    try:
        return ResponseParameters.model_validate(
            {k: v for k, v in (("attributes", attributes), ("excludedAttributes", excluded)) if v}
        )
    except pydantic.ValidationError as exc:
        raise _validation_error(exc) from None


def _project(kind: Kind, doc: dict[str, Any], params: ResponseParameters[Any] | None) -> Any:
    if params is None:
        return doc
    model = kind.model.model_validate(doc)
    return model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params)


def _int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise invalid_value(f"{name} must be an integer, not '{value}'") from None


# --- operations shared by the HTTP endpoints and /Bulk ----------------------------------------


@dataclass(slots=True)
class Outcome:
    status: int
    body: Any = None
    headers: dict[str, str] | None = None


def _resource_outcome(doc: dict[str, Any], status: int = 200) -> Outcome:
    headers = {"ETag": doc["meta"]["version"]}
    if status == 201:
        headers["Location"] = doc["meta"]["location"]
    return Outcome(status, doc, headers)


def _write(
    engine: Engine,
    scope_of: Callable[[Connection], svc.Scope],
    kind: Kind,
    method: str,
    ident: str | None,
    body: dict[str, Any] | None,
    if_match: str | None,
) -> Outcome:
    with engine.begin() as conn:
        scope = scope_of(conn)
        if method == "POST":
            if ident is not None:
                raise ScimError(405, f"POST goes to /{kind.endpoint}, not to one resource")
            doc = _incoming(kind, body or {}, Context.RESOURCE_CREATION_REQUEST)
            return _resource_outcome(kind.create(conn, scope, doc), 201)
        if ident is None:
            raise ScimError(405, f"{method} needs a resource: /{kind.endpoint}/{{id}}")
        if method == "PUT":
            doc = _incoming(kind, body or {}, Context.RESOURCE_REPLACEMENT_REQUEST)
            return _resource_outcome(kind.replace(conn, scope, ident, doc, if_match=if_match))
        if method == "PATCH":
            current = kind.get(conn, scope, ident)
            svc.check_if_match(current, if_match)
            try:
                model = kind.model.model_validate(current)
                patch = PatchOp[kind.model].model_validate(  # type: ignore[name-defined]
                    body or {}, scim_ctx=Context.RESOURCE_PATCH_REQUEST
                )
                patch.patch(model)
            except pydantic.ValidationError as exc:
                raise _validation_error(exc) from None
            except SCIMException as exc:
                raise _scim_exception(exc) from None
            doc = model.model_dump(scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
            return _resource_outcome(kind.replace(conn, scope, ident, doc, if_match=None))
        if method == "DELETE":
            kind.delete(conn, scope, ident, if_match=if_match)
            return Outcome(204)
    raise ScimError(405, f"{method} is not supported on /{kind.endpoint}")


def _principal_scope(
    request: Request, principal: Principal, action: Action
) -> Callable[[Connection], svc.Scope]:
    return lambda conn: _scope(request, principal, action, conn)


def _send(outcome: Outcome) -> Response:
    if outcome.body is None:
        return Response(status_code=outcome.status, headers=outcome.headers)
    return scim_response(outcome.body, outcome.status, outcome.headers)


# --- Users and Groups -------------------------------------------------------------------------


async def _list(
    request: Request, principal: Principal, kind: Kind, params: dict[str, Any]
) -> Response:
    engine = engine_of(request)
    start = max(1, _int(params.get("startIndex"), "startIndex", 1))
    count = min(max(0, _int(params.get("count"), "count", m.DEFAULT_COUNT)), m.MAX_RESULTS)
    order = str(params.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid_value(f"sortOrder must be ascending or descending, not '{order}'")
    projection = _parameters(params.get("attributes"), params.get("excludedAttributes"))

    def run() -> tuple[int, list[dict[str, Any]]]:
        with engine.connect() as conn:
            scope = _scope(request, principal, Action.SCIM_READ, conn)
            return kind.list(
                conn,
                scope,
                filter_text=params.get("filter") or None,
                sort_by=params.get("sortBy") or None,
                descending=order == "descending",
                start_index=start,
                count=count,
            )

    total, docs = await run_in_threadpool(run)
    resources = [_project(kind, d, projection) for d in docs]
    return scim_response(_listing(resources, total, start))


def _join(value: Any) -> str | None:
    if value is None:
        return None
    return ",".join(value) if isinstance(value, list) else str(value)


def _register(kind: Kind) -> None:
    base = f"/{kind.endpoint}"

    @router.get(base, name=f"list_{kind.endpoint}")
    async def list_resources(request: Request, principal: CurrentPrincipal) -> Response:
        return await _list(request, principal, kind, dict(request.query_params))

    @router.post(base + "/.search", name=f"search_{kind.endpoint}")
    async def search(request: Request, principal: CurrentPrincipal) -> Response:
        body = await _json_body(request)
        params = {
            "filter": body.get("filter"),
            "sortBy": body.get("sortBy"),
            "sortOrder": body.get("sortOrder"),
            "startIndex": None if body.get("startIndex") is None else str(body["startIndex"]),
            "count": None if body.get("count") is None else str(body["count"]),
            "attributes": _join(body.get("attributes")),
            "excludedAttributes": _join(body.get("excludedAttributes")),
        }
        return await _list(request, principal, kind, params)

    @router.post(base, name=f"create_{kind.endpoint}")
    async def create(request: Request, principal: CurrentPrincipal) -> Response:
        body = await _json_body(request)
        scope_of = _principal_scope(request, principal, Action.SCIM_WRITE)
        engine = engine_of(request)
        outcome = await run_in_threadpool(_write, engine, scope_of, kind, "POST", None, body, None)
        return _send(outcome)

    @router.get(base + "/{ident}", name=f"get_{kind.endpoint}")
    async def get(request: Request, ident: str, principal: CurrentPrincipal) -> Response:
        engine = engine_of(request)
        projection = _parameters(
            request.query_params.get("attributes"),
            request.query_params.get("excludedAttributes"),
        )

        def run() -> dict[str, Any]:
            with engine.connect() as conn:
                return kind.get(conn, _scope(request, principal, Action.SCIM_READ, conn), ident)

        doc = await run_in_threadpool(run)
        version = doc["meta"]["version"]
        none_match = request.headers.get("if-none-match")
        if none_match and (
            none_match.strip() == "*" or version in {t.strip() for t in none_match.split(",")}
        ):
            return Response(status_code=304, headers={"ETag": version})
        return scim_response(_project(kind, doc, projection), headers={"ETag": version})

    def _changer(method: str) -> Any:
        async def change(request: Request, ident: str, principal: CurrentPrincipal) -> Response:
            body = None if method == "DELETE" else await _json_body(request)
            scope_of = _principal_scope(request, principal, Action.SCIM_WRITE)
            outcome = await run_in_threadpool(
                _write,
                engine_of(request),
                scope_of,
                kind,
                method,
                ident,
                body,
                request.headers.get("if-match"),
            )
            return _send(outcome)

        return change

    for method in ("PUT", "PATCH", "DELETE"):
        router.add_api_route(
            base + "/{ident}",
            _changer(method),
            methods=[method],
            name=f"{method.lower()}_{kind.endpoint}",
        )


for _kind in KINDS.values():
    _register(_kind)


# --- Bulk (RFC 7644 §3.7) -----------------------------------------------------------------------


def _resolve(value: Any, ids: dict[str, str], missing: set[str]) -> Any:
    if isinstance(value, str):
        if value.startswith("bulkId:"):
            ref = value[len("bulkId:") :]
            if ref in ids:
                return ids[ref]
            missing.add(ref)
        return value
    if isinstance(value, list):
        return [_resolve(v, ids, missing) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, ids, missing) for k, v in value.items()}
    return value


def _bulk_error(exc: ScimError) -> dict[str, Any]:
    return {"status": str(exc.status), "response": exc.body()}


def run_bulk(
    engine: Engine, scope_of: Callable[[Connection], svc.Scope], body: dict[str, Any]
) -> dict[str, Any]:
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(
            400, "a bulk request needs 'Operations' (a non-empty list)", "invalidSyntax"
        )
    if len(operations) > m.BULK_MAX_OPERATIONS:
        raise ScimError(
            413,
            f"{len(operations)} operations: at most {m.BULK_MAX_OPERATIONS} per bulk request",
        )
    fail_on_errors = body.get("failOnErrors")
    if fail_on_errors is not None and (not isinstance(fail_on_errors, int) or fail_on_errors < 1):
        raise invalid_value("failOnErrors must be a positive integer")
    defined = {o.get("bulkId") for o in operations if isinstance(o, dict) and o.get("bulkId")}
    ids: dict[str, str] = {}
    results: dict[int, dict[str, Any]] = {}
    pending = list(range(len(operations)))
    errors = 0
    while pending:
        progressed = False
        for index in list(pending):
            op = operations[index]
            result = _bulk_one(engine, scope_of, op, ids, defined, final=False)
            if result is None:
                continue  # waits for a bulkId defined by a later operation
            pending.remove(index)
            progressed = True
            results[index] = result
            if int(result["status"]) >= 400:
                errors += 1
                if fail_on_errors and errors >= fail_on_errors:
                    pending = []
                    break
        if not progressed:
            for index in pending:  # circular or undefined references
                last = _bulk_one(engine, scope_of, operations[index], ids, defined, True)
                assert last is not None  # a final attempt always answers
                results[index] = last
            break
    return {
        "schemas": [m.BULK_RESPONSE],
        "Operations": [results[i] for i in sorted(results)],
    }


def _bulk_one(
    engine: Engine,
    scope_of: Callable[[Connection], svc.Scope],
    op: Any,
    ids: dict[str, str],
    defined: set[Any],
    final: bool,
) -> dict[str, Any] | None:
    if not isinstance(op, dict):
        return _bulk_error(ScimError(400, "an operation must be an object", "invalidSyntax"))
    method = str(op.get("method") or "").upper()
    bulk_id = op.get("bulkId")
    head: dict[str, Any] = {"method": method}
    if bulk_id:
        head["bulkId"] = bulk_id
    if op.get("version"):
        head["version"] = op["version"]
    missing: set[str] = set()
    path = _resolve(str(op.get("path") or ""), ids, missing)
    data = _resolve(op.get("data"), ids, missing)
    if missing:
        if not final and missing <= defined:
            return None
        undefined = ", ".join(sorted(missing))
        return {
            **head,
            **_bulk_error(ScimError(409, f"bulkId {undefined} cannot be resolved", "invalidValue")),
        }
    try:
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise ScimError(400, f"bulk method '{method}' is not POST, PUT, PATCH or DELETE")
        if method == "POST" and not bulk_id:
            raise ScimError(400, "a bulk POST needs a bulkId", "invalidValue")
        parts = [x for x in path.split("/") if x]
        if not parts or parts[0] not in KINDS or len(parts) > 2:
            raise ScimError(400, f"bulk path '{path}' is not /Users[/id] or /Groups[/id]")
        kind = KINDS[parts[0]]
        if method != "DELETE" and not isinstance(data, dict):
            raise ScimError(400, f"bulk {method} needs 'data' (an object)", "invalidSyntax")
        outcome = _write(
            engine,
            scope_of,
            kind,
            method,
            parts[1] if len(parts) == 2 else None,
            data,
            op.get("version"),
        )
    except ScimError as exc:
        return {**head, **_bulk_error(exc)}
    except AccessDenied as exc:
        return {**head, **_bulk_error(ScimError(exc.status, exc.detail))}
    result = {**head, "status": str(outcome.status)}
    if outcome.body is not None:
        meta = outcome.body["meta"]
        result["location"] = meta["location"]
        result["version"] = meta["version"]
        if method == "POST" and bulk_id:
            ids[str(bulk_id)] = outcome.body["id"]
    elif method == "DELETE":
        result["location"] = f"{path}"
    return result


@router.post("/Bulk")
async def bulk(request: Request, principal: CurrentPrincipal) -> Response:
    raw = await request.body()
    if len(raw) > m.BULK_MAX_PAYLOAD:
        raise ScimError(413, f"the bulk request is {len(raw)} bytes: at most {m.BULK_MAX_PAYLOAD}")
    body = await _json_body(request)
    engine = engine_of(request)

    def run() -> dict[str, Any]:
        with engine.connect() as conn:  # refuse early: no token, wrong scope
            _scope(request, principal, Action.SCIM_WRITE, conn)
        return run_bulk(engine, _principal_scope(request, principal, Action.SCIM_WRITE), body)

    return scim_response(await run_in_threadpool(run))


# --- search across resource types (RFC 7644 §3.4.3) ------------------------------------------


@router.post("/.search")
async def search_all(request: Request, principal: CurrentPrincipal) -> Response:
    """A search at the root covers Users then Groups. A filter naming an attribute one of
    them lacks matches nothing of that type (§3.4.2.1); lacking in both, it is refused."""
    body = await _json_body(request)
    engine = engine_of(request)
    start = max(1, _int(_str(body.get("startIndex")), "startIndex", 1))
    count = min(max(0, _int(_str(body.get("count")), "count", m.DEFAULT_COUNT)), m.MAX_RESULTS)
    order = str(body.get("sortOrder") or "ascending").lower()
    projection = _parameters(_join(body.get("attributes")), _join(body.get("excludedAttributes")))

    def run() -> tuple[int, list[tuple[Kind, dict[str, Any]]]]:
        total = 0
        found: list[tuple[Kind, dict[str, Any]]] = []
        refusals: list[ScimError] = []
        offset = start - 1
        with engine.connect() as conn:
            scope = _scope(request, principal, Action.SCIM_READ, conn)
            for kind in KINDS.values():
                arguments = {
                    "filter_text": body.get("filter") or None,
                    "sort_by": body.get("sortBy") or None,
                    "descending": order == "descending",
                }
                try:
                    n, _ = kind.list(conn, scope, start_index=1, count=0, **arguments)
                except ScimError as exc:
                    if exc.scim_type not in ("invalidFilter", "invalidValue"):
                        raise
                    refusals.append(exc)
                    continue
                total += n
                want = count - len(found)
                if want > 0 and offset < n:
                    _, docs = kind.list(
                        conn, scope, start_index=offset + 1, count=want, **arguments
                    )
                    found += [(kind, d) for d in docs]
                offset = max(0, offset - n)
        if len(refusals) == len(KINDS):
            raise refusals[0]
        return total, found

    total, found = await run_in_threadpool(run)
    return scim_response(_listing([_project(k, d, projection) for k, d in found], total, start))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- anything else under /scim/v2 -------------------------------------------------------------

_KNOWN = {"ServiceProviderConfig", "Schemas", "ResourceTypes", "Users", "Groups", "Bulk"}


@router.api_route(
    "/{name}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def unknown(name: str, request: Request) -> Response:
    if name in _KNOWN:
        raise ScimError(405, f"{request.method} is not supported on /{name}")
    raise ScimError(404, f"no SCIM endpoint /{name}")
