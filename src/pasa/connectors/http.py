"""HTTP plumbing shared by the REST-based connectors (SCIM, door system, webhook).

One mapping from HTTP outcomes to connector errors, so every REST target is retried, parked
and reported the same way: transport failures, 429/503 (honouring ``Retry-After``) and other
5xx are transient; 401/403 are permanent and never echo the credential.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from pasa.connectors.base import PermanentError, TransientError


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    describe: str,
    credentials_hint: str,
    refused: str = "the credentials",
    during: str = "",
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP call; transport failures, 429/5xx and 401/403 become connector errors.

    ``during`` (e.g. " on create") is appended to messages; other statuses are returned for
    the connector to interpret (404, 409, 412 mean different things per protocol).
    """
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientError(f"{describe} timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise TransientError(f"{describe} unavailable ({type(exc).__name__})") from None
    status = response.status_code
    if status in (429, 503):
        raise TransientError(
            f"{describe} is busy (HTTP {status}){during}",
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status >= 500:
        raise TransientError(f"{describe} failed (HTTP {status}){during}")
    if status in (401, 403):
        raise PermanentError(
            f"{describe} refused {refused} (HTTP {status}){during}; {credentials_hint}"
        )
    return response
