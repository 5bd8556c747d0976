"""structlog set-up: readable lines on a terminal, JSON lines for log shippers.

No secret reaches a log line: :func:`redact` (a structlog processor) replaces the value of
any key that names a secret (``authorization``, ``cookie``, ``token``, ``code``,
``password``, ``secret``, ``*_token``, ``*_secret``, ...) and scrubs bearer tokens, PASA API
tokens and secret query parameters (``?code=…&state=…``) out of every string, nested dicts
and lists included. The same scrubbing is attached as a filter to the standard-library
loggers that print URLs (uvicorn's access log, httpx, Authlib).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "token",
        "code",
        "password",
        "passwd",
        "secret",
        "state",
        "nonce",
        "code_verifier",
        "credentials",
        "api_key",
        "assertion",
        "client_assertion",
    }
)
_SENSITIVE_SUFFIXES = ("_token", "_secret", "_password", "_code_verifier")
_QUERY_KEYS = (
    "code|state|nonce|token|access_token|id_token|refresh_token|password|client_secret|"
    "code_verifier|client_assertion|session_state"
)
_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\bpasa_[A-Za-z0-9_-]{16,}"), "pasa_" + REDACTED),
    (re.compile(rf"(?i)([?&;](?:{_QUERY_KEYS})=)[^&\s\"';]*"), r"\1" + REDACTED),
    # Something that looks like a JWT (an ID token or an access token).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
]
# Standard-library loggers that may print URLs or headers.
STDLIB_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore", "authlib")


def is_sensitive(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in SENSITIVE_KEYS or name.endswith(_SENSITIVE_SUFFIXES)


def scrub(text: str) -> str:
    """``text`` with bearer tokens, API tokens, JWTs and secret query values replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_sensitive(k) else _clean(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_clean(v, depth + 1) for v in value)
    return value


def redact(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no secret values in the event."""
    for key, value in list(event_dict.items()):
        if key != "event" and is_sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _clean(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """A standard-library filter applying :func:`scrub` to the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = _clean(record.args)
        return True


def install_stdlib_filter() -> None:
    """Attach :class:`RedactingFilter` to the loggers in :data:`STDLIB_LOGGERS` (once)."""
    for name in STDLIB_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def processors(json: bool = False) -> list[structlog.typing.Processor]:
    """The processor chain, renderer last."""
    chain: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        chain.append(structlog.processors.format_exc_info)
    chain.append(redact)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        # Plain tracebacks: never the local variables (which may hold secrets).
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    return [*chain, renderer]


def configure(level: str = "INFO", json: bool = False) -> None:
    structlog.configure(
        processors=processors(json),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    install_stdlib_filter()
