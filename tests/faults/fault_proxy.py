"""A small fault-injecting HTTP reverse proxy, run in a thread of the test.

It sits in front of a real HTTP server and, on a fixed pattern of the request count,
answers for it:

* every ``fail_every``-th request: HTTP 500. Every other one of those is a *lost reply*:
  the request is first forwarded (the server carries it out) and its answer replaced by the
  500, as when a load balancer times out after the back end has done the work. The client
  cannot tell the two apart, which is the point: a retry must not do the work twice.
* otherwise every ``busy_every``-th request: HTTP 429 with ``Retry-After: retry_after``
  (seconds), not forwarded.
* every other request is forwarded as it is (method, path, query, headers, body).

The pattern is deterministic (request 7: lost reply, 14: plain 500, 5 and 10: 429, ...), so
a failing run can be replayed. What it did is counted in :attr:`FaultProxy.counts` and
listed, request by request, in :attr:`FaultProxy.log`.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# Headers that belong to one connection (or that httpx has already undone: the body it
# returns is decoded), never passed through.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
    }
)


class FaultProxy:
    """A reverse proxy on ``127.0.0.1:<free port>`` in front of ``upstream``."""

    def __init__(
        self,
        upstream: str,
        *,
        fail_every: int = 7,
        busy_every: int = 5,
        retry_after: int = 120,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.fail_every = fail_every
        self.busy_every = busy_every
        self.retry_after = retry_after
        self.counts: Counter[str] = Counter()
        # (request number, method, path, what the proxy did)
        self.log: list[tuple[int, str, str, str]] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=self.upstream, timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
        self._client.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the decision ------------------------------------------------------------------------

    def decide(self, number: int) -> str:
        """``lost_reply``, ``fail``, ``busy`` or ``forward`` for the ``number``-th request."""
        if number % self.fail_every == 0:
            return "lost_reply" if (number // self.fail_every) % 2 == 1 else "fail"
        if number % self.busy_every == 0:
            return "busy"
        return "forward"

    def _next(self, method: str, path: str) -> tuple[int, str]:
        with self._lock:
            number = len(self.log) + 1
            action = self.decide(number)
            self.log.append((number, method, path, action))
            self.counts[action] += 1
            return number, action

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> httpx.Response:
        with self._lock:  # one upstream connection; the client under test is sequential
            return self._client.request(method, path, headers=headers, content=body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real services do

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle's algorithm
                # and the client's delayed ACK hold every answer back ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                _, action = proxy._next(self.command, self.path)
                if action == "busy":
                    self._answer(
                        429,
                        {
                            "Retry-After": str(proxy.retry_after),
                            "Content-Type": "application/scim+json",
                        },
                        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], '
                        b'"status": "429", "detail": "Too many requests (fault proxy)"}',
                    )
                    return
                if action in ("forward", "lost_reply"):
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    response = proxy._forward(self.command, self.path, headers, body)
                    if action == "forward":
                        self._answer(
                            response.status_code,
                            {
                                k: v
                                for k, v in response.headers.items()
                                if k.lower() not in _HOP_BY_HOP
                            },
                            response.content,
                        )
                        return
                self._answer(
                    500,
                    {"Content-Type": "text/plain"},
                    b"Internal Server Error (fault proxy)",
                )

            do_GET = _handle
            do_POST = _handle
            do_PUT = _handle
            do_PATCH = _handle
            do_DELETE = _handle

        return Handler
