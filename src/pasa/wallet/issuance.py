"""OpenID4VCI 1.0 client, pre-authorized code flow: collect credentials into the wallet.

Steps (each reported through ``log``): resolve the Credential Offer (``openid-credential-
offer://`` by reference or by value, or its https link) → Credential Issuer metadata and the
Authorization Server's metadata at their well-known paths → token request with the
pre-authorized code and the transaction code → for each offered configuration, a fresh
``c_nonce`` and a credential request with an ``openid4vci-proof+jwt`` key proof → verify each
credential against the issuer's published keys (``/.well-known/jwt-vc-issuer``) and that it is
bound to our key → store it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pasa.passport._jose import sign_jws
from pasa.passport.errors import VerificationError
from pasa.passport.keys import jwks_resolver
from pasa.passport.sdjwt import epoch, verify
from pasa.passport.vc import VC_POLICY
from pasa.wallet import http as web
from pasa.wallet.errors import WalletError
from pasa.wallet.store import HeldCredential, WalletStore, held_from

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
OFFER_SCHEME = "openid-credential-offer"
FORMAT = "dc+sd-jwt"
# The wallet checks what it is given as a verifier would, except that nobody is there to bind.
RECEIPT_POLICY = dataclasses.replace(VC_POLICY, require_key_binding=False)

Log = Callable[[str], None]

# Issuer refusals a person can act on, by PASA's ``reason`` (or the OAuth ``error``).
_TOKEN_REFUSALS = {
    "tx_code_wrong": "The transaction code is wrong. Check the code you were sent and try again.",
    "offer_locked": "The offer is locked after too many wrong transaction codes: ask again.",
    "code_expired": "The credential offer has expired: ask for a new one.",
    "code_used": "The credential offer has already been used: ask for a new one.",
    "code_unknown": "The issuer does not know this offer: ask for a new one.",
}


def _quiet(_: str) -> None:
    return None


def offer_location(offer_uri: str) -> tuple[str | None, dict[str, Any] | None]:
    """(credential_offer_uri, None) for an offer by reference or its https link, or
    (None, offer) for an offer passed by value."""
    text = offer_uri.strip()
    parts = urlsplit(text)
    query = parse_qs(parts.query)
    if (
        parts.scheme == OFFER_SCHEME
        or "credential_offer_uri" in query
        or "credential_offer" in query
    ):
        if "credential_offer" in query:
            try:
                offer = json.loads(query["credential_offer"][0])
            except ValueError as exc:
                raise WalletError("offer_malformed", "The credential offer is not JSON.") from exc
            if not isinstance(offer, dict):
                raise WalletError("offer_malformed", "The credential offer is not a JSON object.")
            return None, offer
        if "credential_offer_uri" in query:
            return web.check_url(query["credential_offer_uri"][0], "credential offer URI"), None
        raise WalletError(
            "offer_malformed", "The offer has neither credential_offer_uri nor credential_offer."
        )
    if parts.scheme in ("https", "http"):
        return web.check_url(text, "credential offer link"), None
    raise WalletError(
        "offer_malformed", "That is not a credential offer (openid-credential-offer://...)."
    )


def resolve_offer(http: httpx.Client, offer_uri: str) -> dict[str, Any]:
    url, offer = offer_location(offer_uri)
    if url is not None:
        response = web.get(http, url, "credential offer")
        if response.status_code == 404:
            raise WalletError(
                "offer_unavailable",
                "The credential offer has expired, was already used or was locked: ask for a"
                " new one.",
            )
        if response.status_code != 200:
            raise WalletError(
                "offer_unavailable",
                f"The issuer answered HTTP {response.status_code} for the offer.",
            )
        offer = web.json_object(response, "credential offer")
    assert offer is not None
    issuer = offer.get("credential_issuer")
    ids = offer.get("credential_configuration_ids")
    grant = (offer.get("grants") or {}).get(PRE_AUTHORIZED_GRANT)
    if not isinstance(issuer, str) or not isinstance(ids, list) or not ids:
        raise WalletError(
            "offer_malformed", "The offer names no issuer or no credential configurations."
        )
    if not isinstance(grant, dict) or not isinstance(grant.get("pre-authorized_code"), str):
        raise WalletError(
            "offer_unsupported",
            "The offer has no pre-authorized code; only the pre-authorized code flow is supported.",
        )
    web.check_url(issuer, "credential issuer")
    return offer


def _metadata(http: httpx.Client, issuer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = web.json_object(
        web.get(http, web.well_known(issuer, "openid-credential-issuer"), "issuer metadata"),
        "issuer metadata",
    )
    if meta.get("credential_issuer") != issuer:
        raise WalletError(
            "metadata_mismatch", "The issuer's metadata names another credential issuer."
        )
    servers = meta.get("authorization_servers") or [issuer]
    server_id = str(servers[0])
    server = web.json_object(
        web.get(
            http,
            web.well_known(server_id, "oauth-authorization-server"),
            "authorization server metadata",
        ),
        "authorization server metadata",
    )
    if server.get("issuer") != server_id or not isinstance(server.get("token_endpoint"), str):
        raise WalletError(
            "metadata_mismatch", "The authorization server's metadata is not for that server."
        )
    return meta, server


def _token(http: httpx.Client, server: Mapping[str, Any], code: str, tx_code: str | None) -> str:
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code}
    if tx_code is not None:
        form["tx_code"] = tx_code
    response = web.post(http, str(server["token_endpoint"]), "token endpoint", data=form)
    body = web.json_object(response, "token response")
    if response.status_code != 200:
        reason = str(body.get("reason") or body.get("error") or "refused")
        message = (
            _TOKEN_REFUSALS.get(reason) or f"The issuer refused the offer: {web.error_text(body)}"
        )
        raise WalletError(reason, message)
    token = body.get("access_token")
    if not isinstance(token, str) or str(body.get("token_type", "")).lower() != "bearer":
        raise WalletError("bad_response", "The token response has no Bearer access token.")
    return token


def _nonce(http: httpx.Client, meta: Mapping[str, Any]) -> str:
    endpoint = meta.get("nonce_endpoint")
    if not isinstance(endpoint, str):
        raise WalletError("offer_unsupported", "The issuer has no nonce endpoint.")
    body = web.json_object(web.post(http, endpoint, "nonce endpoint"), "nonce response")
    nonce = body.get("c_nonce")
    if not isinstance(nonce, str) or not nonce:
        raise WalletError("bad_response", "The nonce endpoint gave no c_nonce.")
    return nonce


def key_proof(store: WalletStore, *, issuer: str, nonce: str, now: dt.datetime) -> str:
    """An ``openid4vci-proof+jwt``: our public key, signed, for this issuer and nonce."""
    header = {"alg": "ES256", "typ": PROOF_TYP, "jwk": store.holder_jwk}
    return sign_jws(header, {"aud": issuer, "iat": epoch(now), "nonce": nonce}, store.holder_key)


def issuer_jwks(http: httpx.Client, issuer: str) -> dict[str, Any]:
    """The issuer's published keys from ``/.well-known/jwt-vc-issuer`` (its ``issuer`` checked)."""
    body = web.json_object(
        web.get(http, web.well_known(issuer, "jwt-vc-issuer"), "issuer keys"), "issuer keys"
    )
    jwks = body.get("jwks")
    if body.get("issuer") != issuer or not isinstance(jwks, dict):
        raise WalletError("metadata_mismatch", "The issuer's key document is not for that issuer.")
    return jwks


def check_received(
    store: WalletStore, credential: str, *, issuer: str, jwks: Mapping[str, Any], now: dt.datetime
) -> None:
    """Refuse a credential not signed by the issuer's published key or not bound to us."""
    try:
        result = verify(
            credential,
            issuer_keys=jwks_resolver({issuer: jwks}),
            now=now,
            policy=RECEIPT_POLICY,
        )
    except VerificationError as exc:
        raise WalletError("credential_invalid", f"The issuer sent a bad credential: {exc}") from exc
    cnf = result.claims.get("cnf")
    bound = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(bound, dict) or {k: bound.get(k) for k in ("x", "y")} != {
        k: store.holder_jwk[k] for k in ("x", "y")
    }:
        raise WalletError("credential_invalid", "The credential is not bound to this wallet's key.")


def receive(
    store: WalletStore,
    offer_uri: str,
    *,
    tx_code: str | None = None,
    ask_tx_code: Callable[[str], str] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    http: httpx.Client | None = None,
    log: Log = _quiet,
) -> list[HeldCredential]:
    """Collect every credential the offer names; return what was stored."""
    owned = http is None
    http = http or web.client()
    try:
        offer = resolve_offer(http, offer_uri)
        issuer = str(offer["credential_issuer"])
        log(f"Offer from {issuer}: {', '.join(map(str, offer['credential_configuration_ids']))}.")
        meta, server = _metadata(http, issuer)
        grant = offer["grants"][PRE_AUTHORIZED_GRANT]
        wanted = grant.get("tx_code")
        if isinstance(wanted, dict) and tx_code is None:
            if ask_tx_code is None:
                raise WalletError(
                    "tx_code_missing", "The offer needs the transaction code you were sent."
                )
            tx_code = ask_tx_code(str(wanted.get("description") or "Transaction code"))
        if isinstance(wanted, dict):
            length = wanted.get("length")
            if isinstance(length, int) and tx_code is not None and len(tx_code.strip()) != length:
                raise WalletError(
                    "tx_code_wrong", f"The transaction code has {length} characters; check it."
                )
        token = _token(http, server, grant["pre-authorized_code"], tx_code and tx_code.strip())
        log("Transaction code accepted; access token received.")
        supported = meta.get("credential_configurations_supported") or {}
        stored: list[HeldCredential] = []
        for config in offer["credential_configuration_ids"]:
            details = supported.get(config)
            if not isinstance(details, dict) or details.get("format") != FORMAT:
                log(f"Skipped {config}: not an SD-JWT VC this wallet can hold.")
                continue
            proof = key_proof(store, issuer=issuer, nonce=_nonce(http, meta), now=now())
            response = web.post(
                http,
                str(meta["credential_endpoint"]),
                "credential endpoint",
                headers={"Authorization": f"Bearer {token}"},
                json={"credential_configuration_id": config, "proofs": {"jwt": [proof]}},
            )
            body = web.json_object(response, "credential response")
            if response.status_code != 200:
                log(f"No {config} credential: {web.error_text(body)}")
                continue
            display = ((details.get("credential_metadata") or {}).get("display") or [{}])[0]
            # Fetched after issuing: the issuer may make its first key for this credential.
            jwks = issuer_jwks(http, issuer)
            for item in body.get("credentials") or []:
                credential = item.get("credential") if isinstance(item, dict) else None
                if not isinstance(credential, str):
                    raise WalletError("bad_response", "The credential response has no credential.")
                check_received(store, credential, issuer=issuer, jwks=jwks, now=now())
                held = store.save(
                    held_from(
                        credential, configuration_id=config, received_at=now(), display=display
                    )
                )
                stored.append(held)
                log(f"Stored {display.get('name') or held.vct} (id {held.id[:8]}).")
        if not stored:
            raise WalletError("nothing_issued", "The issuer issued no credential from this offer.")
        return stored
    finally:
        if owned:
            http.close()
