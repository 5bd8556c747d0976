"""OpenID4VCI 1.0 issuer endpoints of the Digital Staff Passport (JSON only, no session).

Metadata at the well-known paths, the token, nonce and credential endpoints, the Status List
Token and the Credential Offer by reference. The logic is in
:mod:`pasa.service.passport_issuer`; errors are OAuth / OpenID4VCI JSON bodies
(``{"error", "error_description", "reason"}``), never HTML. The Credential Issuer Identifier
is ``PASA_PUBLIC_URL`` when set, else the request's own origin.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pasa.config import get_settings
from pasa.domain.errors import NotFoundError
from pasa.passport.keys import KeyEncryptionKey
from pasa.service import passport_issuer as svc
from pasa.web.security import clock_of, engine_of

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def issuer_of(request: Request) -> str:
    public = get_settings().public_url
    if public:
        return public.rstrip("/")
    return str(request.base_url).rstrip("/")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _error(exc: svc.IssuanceError) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    return _json(exc.body(), exc.status, headers)


@router.get("/.well-known/openid-credential-issuer")
def credential_issuer_metadata(request: Request) -> JSONResponse:
    return _json(svc.issuer_metadata(issuer_of(request)))


@router.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata(request: Request) -> JSONResponse:
    return _json(svc.authorization_server_metadata(issuer_of(request)))


@router.get("/.well-known/jwt-vc-issuer")
def jwt_vc_issuer(request: Request) -> JSONResponse:
    with engine_of(request).connect() as conn:
        body = svc.jwt_vc_issuer_metadata(conn, issuer_of(request), clock_of(request).now())
    return _json(body, headers={"Cache-Control": "public, max-age=300"})


@router.post("/passport/token")
async def token(request: Request) -> JSONResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))

    def one(name: str) -> str | None:
        values = form.get(name)
        return values[0] if values and len(values) == 1 else None

    try:
        issued = await run_in_threadpool(
            svc.exchange_token,
            engine_of(request),
            grant_type=one("grant_type"),
            code=one("pre-authorized_code"),
            tx_code=one("tx_code"),
            now=clock_of(request).now(),
        )
    except svc.IssuanceError as exc:
        return _error(exc)
    return _json(issued.body(), headers=NO_STORE)


@router.post("/passport/nonce")
async def nonce(request: Request) -> JSONResponse:
    value = await run_in_threadpool(
        svc.issue_nonce, engine_of(request), now=clock_of(request).now()
    )
    return _json({"c_nonce": value}, headers=NO_STORE)


@router.post("/passport/credential")
async def credential(request: Request) -> JSONResponse:
    authorization = request.headers.get("authorization", "")
    scheme, _, token_value = authorization.partition(" ")
    access = token_value.strip() if scheme.lower() == "bearer" else None
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return _error(
            svc.IssuanceError(
                "invalid_credential_request", "request_malformed", "The body is not a JSON object."
            )
        )
    try:
        issued = await run_in_threadpool(
            svc.issue_credentials,
            engine_of(request),
            access_token=access,
            request=body,
            issuer=issuer_of(request),
            now=clock_of(request).now(),
            kek=KeyEncryptionKey.from_env(),
        )
    except svc.IssuanceError as exc:
        return _error(exc)
    return _json({"credentials": [{"credential": i.credential} for i in issued]}, headers=NO_STORE)


@router.get("/passport/status/{list_uid}")
def status_list(list_uid: str, request: Request) -> Response:
    try:
        token_value = svc.status_list_token(
            engine_of(request),
            list_uid,
            issuer=issuer_of(request),
            now=clock_of(request).now(),
            kek=KeyEncryptionKey.from_env(),
        )
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    ttl = int(svc.STATUS_LIST_TTL.total_seconds())
    return Response(
        token_value,
        media_type="application/statuslist+jwt",
        headers={"Cache-Control": f"public, max-age={ttl}"},
    )


@router.get("/passport/offers/{offer_uid}")
def offer(offer_uid: str, request: Request) -> JSONResponse:
    try:
        body = svc.offer_document(
            engine_of(request),
            offer_uid,
            issuer=issuer_of(request),
            now=clock_of(request).now(),
            kek=KeyEncryptionKey.from_env(),
        )
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    return _json(body, headers=NO_STORE)
