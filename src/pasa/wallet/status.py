"""Refresh a held credential's status from its issuer's Token Status List.

The list is fetched from the URI the credential names and its signature checked with the
issuer's key published at ``/.well-known/jwt-vc-issuer`` (found by the token's ``kid``), so a
forged or substituted list is refused rather than believed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from pasa.passport._jose import parse_jws, public_key_from_jwk
from pasa.passport.errors import VerificationError
from pasa.passport.status_list import Status, verify_status_list
from pasa.wallet import http as web
from pasa.wallet.errors import WalletError
from pasa.wallet.issuance import issuer_jwks
from pasa.wallet.store import HeldCredential, WalletStore

_STATE = {Status.VALID: "valid", Status.INVALID: "revoked", Status.SUSPENDED: "suspended"}


def fetch_state(
    http: httpx.Client, held: HeldCredential, now: dt.datetime, jwks: dict[str, Any] | None = None
) -> str:
    """valid / revoked / suspended / unknown, read from the signed status list now."""
    if held.status_uri is None or held.status_idx is None:
        return "unknown"
    response = web.get(http, held.status_uri, "status list")
    if response.status_code != 200:
        raise WalletError(
            "status_unavailable", f"The status list answered HTTP {response.status_code}."
        )
    token = response.text.strip()
    keys = (jwks or issuer_jwks(http, held.issuer)).get("keys") or []
    try:
        kid = parse_jws(token, what="status list token", prefix="status_token").header.get("kid")
        jwk = next((k for k in keys if isinstance(k, dict) and k.get("kid") == kid), None)
        if jwk is None:
            raise WalletError(
                "status_untrusted",
                "The status list is signed by a key the issuer does not publish.",
            )
        verified = verify_status_list(
            token,
            key=public_key_from_jwk({k: jwk.get(k) for k in ("kty", "crv", "x", "y")}),
            expected_uri=held.status_uri,
            now=now,
        )
        value = verified.status(held.status_idx)
    except (VerificationError, ValueError) as exc:
        raise WalletError("status_invalid", f"The status list could not be trusted: {exc}") from exc
    return _STATE[Status(value)] if value in (0, 1, 2) else "unknown"


def refresh(
    store: WalletStore, *, now: dt.datetime, http: httpx.Client | None = None
) -> list[tuple[HeldCredential, str | None]]:
    """Re-check every held credential; (credential as saved, problem or None) for each."""
    owned = http is None
    http = http or web.client()
    results: list[tuple[HeldCredential, str | None]] = []
    jwks_by_issuer: dict[str, dict[str, Any]] = {}
    try:
        for held in store.credentials():
            if held.state == "revoked":  # final: no need to ask again
                results.append((held, None))
                continue
            try:
                if held.issuer not in jwks_by_issuer:
                    jwks_by_issuer[held.issuer] = issuer_jwks(http, held.issuer)
                state = fetch_state(http, held, now, jwks_by_issuer[held.issuer])
                results.append((store.set_state(held, state, now), None))
            except WalletError as exc:
                results.append((held, exc.message))
    finally:
        if owned:
            http.close()
    return results
