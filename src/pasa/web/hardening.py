"""HTTP hardening as ASGI middleware: security headers, body size limit and rate limits.

* :class:`SecurityHeaders` adds a Content-Security-Policy suited to server-rendered pages,
  ``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options`` (and CSP
  ``frame-ancestors``) to every response, and ``Strict-Transport-Security`` when cookies are
  ``Secure`` (the service is meant to be reached over https). A header a route set itself is
  kept.
* :class:`BodySizeLimit` refuses a request body larger than the limit with 413 before the
  application reads it (by ``Content-Length``, or by counting a chunked body).
* :class:`RateLimit` counts sign-in requests per client IP and bearer-token requests per
  token in a sliding window held in memory (one process); over the limit is 429 with
  ``Retry-After``.

Refusals are RFC 9457 problems (a SCIM error under ``/scim/``), like the application's own.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_TITLES = {
    403: "Forbidden",
    413: "Content Too Large",
    429: "Too Many Requests",
}

# Inline style attributes are used by the server-rendered pages; scripts only from PASA.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def problem(
    path: str, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a refusal in the caller's protocol (SCIM under ``/scim/``)."""
    if path.startswith("/scim/"):
        body: dict[str, object] = {"schemas": [SCIM_ERROR], "status": str(status), "detail": detail}
        media = b"application/scim+json"
    else:
        body = {
            "type": "about:blank",
            "title": _TITLES.get(status, "Refused"),
            "status": status,
            "detail": detail,
        }
        media = b"application/problem+json"
    raw = json.dumps(body).encode()
    return [
        (b"content-type", media),
        (b"content-length", str(len(raw)).encode()),
        (b"cache-control", b"no-store"),
        *headers,
    ], raw


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    head, body = problem(str(scope.get("path", "")), status, detail, headers)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Add security headers to every HTTP response (keeping any a route already set)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        form_action: Sequence[str] = (),
        csp: str = DEFAULT_CSP,
    ) -> None:
        self.app = app
        # form-action also governs where a form's redirect may go: the OIDC provider too.
        actions = " ".join(["'self'", *form_action])
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", f"{csp}; form-action {actions}".encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_auth = str(scope.get("path", "")).startswith("/auth/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = list(self.headers)
                if is_auth:
                    extra.append((b"cache-control", b"no-store"))
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413 (a problem body)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        mib = self.max_bytes / (1024 * 1024)
        size = f"{mib:g} MiB" if mib >= 1 else f"{self.max_bytes:,} bytes"
        return f"the request body is larger than the {size} this service accepts"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: str | None = None
        chunked = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None and not chunked:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await send_problem(scope, send, 400, "the Content-Length header is not a number")
                return
            if too_big:
                await send_problem(scope, send, 413, self._detail())
                return
            # The server frames the body by Content-Length: it cannot be longer.
            await self.app(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)
            return
        # A chunked body: read it (up to the limit) before the application sees any of it.
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await send_problem(scope, send, 413, self._detail())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SlidingWindow:
    """At most ``limit`` events per key in any ``window`` seconds (a sliding log, in memory)."""

    def __init__(
        self, limit: int, window: float = 60.0, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.now = now
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Record one event for ``key``: 0 if allowed, else seconds until one would be."""
        now = self.now()
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= 10_000:
                    self._prune(now)
                events = self._events[key] = deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(events[0] + self.window - now, 0.001)
            events.append(now)
            return 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]


SIGN_IN_PATHS = ("/auth/login", "/auth/callback", "/auth/dev")
# Public endpoints a wallet calls without any PASA credential: guessing a transaction code
# or flooding the verifier is limited per address like sign-in.
WALLET_PATHS = ("/passport/token", "/passport/verifier/response")


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimit:
    """429 with ``Retry-After`` past ``signin`` sign-in requests (or as many public wallet
    requests) per client IP, or ``token`` requests per bearer token, per minute (0 leaves that
    limit off)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signin: int,
        token: int,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.signin = SlidingWindow(signin, now=now) if signin else None
        self.token = SlidingWindow(token, now=now) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        wait = 0.0
        what = ""
        if self.signin and path.startswith(SIGN_IN_PATHS):
            wait = self.signin.hit(f"ip:{client_ip(scope)}")
            what = "sign-in attempts from this address"
        elif self.signin and path.startswith(WALLET_PATHS):
            wait = self.signin.hit(f"wallet:{client_ip(scope)}")
            what = "wallet requests from this address"
        else:
            authorization = next(
                (v for k, v in scope.get("headers", []) if k == b"authorization"), None
            )
            if self.token and authorization:
                # Keyed by a digest: the limiter never holds a token itself.
                wait = self.token.hit(f"token:{hashlib.sha256(authorization).hexdigest()}")
                what = "requests with this token"
        if wait:
            seconds = max(1, math.ceil(wait))
            await send_problem(
                scope,
                send,
                429,
                f"too many {what}; try again in {seconds} second{'s' if seconds != 1 else ''}",
                [(b"retry-after", str(seconds).encode())],
            )
            return
        await self.app(scope, receive, send)
