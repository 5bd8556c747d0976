"""HTTP for the wallet: HTTPS only (plain HTTP to this machine for tests and demos), JSON
bodies checked, transport failures turned into one sentence."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from pasa.wallet.errors import WalletError

TIMEOUT = httpx.Timeout(10.0)
MAX_BODY = 2_000_000  # bytes; a metadata document or credential is far smaller
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def client() -> httpx.Client:
    # No redirects: every URL the wallet fetches is one the protocol named.
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False)


def check_url(url: str, what: str) -> str:
    """``url`` if it is https (or http to this machine); else a WalletError."""
    parts = urlsplit(url)
    loopback = parts.hostname in _LOOPBACK
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        if not parts.hostname:
            raise WalletError("bad_url", f"The {what} has no host: {url}")
        return url
    raise WalletError("insecure_url", f"The {what} must be an https:// URL, not {url}")


def well_known(identifier: str, name: str) -> str:
    """The well-known URL of ``identifier`` (RFC 8615: inserted between host and path)."""
    parts = urlsplit(identifier)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{name}{path}", "", ""))


def _unreachable(url: str, exc: httpx.HTTPError) -> WalletError:
    return WalletError("unreachable", f"Could not reach {url}: {type(exc).__name__}.")


def get(http: httpx.Client, url: str, what: str, **kwargs: Any) -> httpx.Response:
    check_url(url, what)
    try:
        return http.get(url, **kwargs)
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc


def post(http: httpx.Client, url: str, what: str, **kwargs: Any) -> httpx.Response:
    check_url(url, what)
    try:
        return http.post(url, **kwargs)
    except httpx.HTTPError as exc:
        raise _unreachable(url, exc) from exc


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The response body as a JSON object, or a WalletError naming ``what``."""
    if len(response.content) > MAX_BODY:
        raise WalletError("bad_response", f"The {what} is too large.")
    try:
        body = response.json()
    except ValueError as exc:
        raise WalletError(
            "bad_response", f"The {what} is not JSON (HTTP {response.status_code})."
        ) from exc
    if not isinstance(body, dict):
        raise WalletError("bad_response", f"The {what} is not a JSON object.")
    return body


def error_text(body: dict[str, Any]) -> str:
    """``error_description`` (or ``error``) of an OAuth-style error body, for a person."""
    text = body.get("error_description") or body.get("error") or "no reason given"
    return str(text)[:300]
