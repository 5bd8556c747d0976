"""A generic REST / webhook connector: one templated HTTP request per operation.

For systems with a small HTTP API of their own (or a webhook that forwards changes), each
operation is configured as a request template::

    requests:
      create:  {method: POST, path: /users, body: {"login": "{username}",
                "name": "{attributes.first_name} {attributes.last_name}"}, expected: [201]}
      disable: {method: POST, path: "/users/{username}/disable"}
      add_member: {method: PUT, path: "/users/{username}/{kind}s/{value}"}

Templates
    Placeholders only — ``{username}``, ``{new_username}`` (rename), ``{kind}`` /
    ``{value}`` (memberships), ``{attributes}`` (the whole mapping) and
    ``{attributes.<name>}``; ``{{`` / ``}}`` are literal braces. Nothing is evaluated: a
    placeholder is looked up, never executed. Every placeholder is checked when the connector
    is built, so a misspelt one is a :class:`ConfigurationError` naming it. In a path each
    value is URL-encoded as one segment (``/`` included); ``.`` and ``..`` are refused. A
    body is JSON (a mapping from YAML, or a JSON string): a string that is exactly one
    placeholder is replaced by the value with its JSON type (``null`` for ``None``); other
    strings get the values as text. In ``update`` ``{attributes...}`` are the *changes*,
    and a body field that is exactly ``{attributes.<name>}`` is left out when that
    attribute is not being changed (so an update never blanks what it was not asked to).
Capabilities
    follow the configured operations: create, update, rename, enable + disable, delete,
    add_member + remove_member, read, list. Without ``read`` / ``list`` the connector is
    write-only (no ``READ`` / ``LIST``; reconciliation skips it), and a ``409`` on create
    cannot be told apart from a repeat, so it is a :class:`ConflictError`.
Read and list
    answer JSON; ``response`` names where the fields are (dotted paths; defaults
    ``username``, ``id``, ``enabled``, ``attributes``, ``memberships``, and for ``list``
    ``items``: the list inside the answer, default the answer itself). Memberships may be
    ``{"kind": .., "value": ..}`` objects, ``[kind, value]`` pairs or ``"kind:value"``.
    ``create`` takes the new id from its answer's ``response.external_id`` (``id``), else
    reads the account back, else uses the username.
Errors
    connection refused, timeouts, 5xx → :class:`TransientError` (429 / 503 with
    ``Retry-After`` as ``retry_after``); 401 / 403 → :class:`PermanentError` naming the
    environment variable, never its value; 404 on update / enable / disable / add_member /
    rename → :class:`NotFoundError` (on delete / remove_member: already done; on read:
    ``None``); 409 on create / rename → :class:`ConflictError` unless the existing account
    is the same person's; any other status outside ``expected`` → :class:`PermanentError`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx

from pasa.connectors.base import (
    Attributes,
    Capability,
    ConflictError,
    Connector,
    Membership,
    NotFoundError,
    PermanentError,
    RemoteAccount,
    check_owner,
    reject_unknown_settings,
    require_secret_env,
    require_text_setting,
)
from pasa.connectors.http import send
from pasa.domain.errors import ConfigurationError

ATTRIBUTE_NAMES: Final[tuple[str, ...]] = (
    "first_name",
    "last_name",
    "display_name",
    "email",
    "employee_number",
    "organisation",
    "department",
    "job_title",
    "manager_employee_number",
)
_WITH_ATTRIBUTES: Final = frozenset({"username", "attributes"}) | frozenset(
    f"attributes.{name}" for name in ATTRIBUTE_NAMES
)
PLACEHOLDERS: Final[dict[str, frozenset[str]]] = {
    "create": _WITH_ATTRIBUTES,
    "update": _WITH_ATTRIBUTES,
    "rename": frozenset({"username", "new_username"}),
    "enable": frozenset({"username"}),
    "disable": frozenset({"username"}),
    "delete": frozenset({"username"}),
    "add_member": frozenset({"username", "kind", "value"}),
    "remove_member": frozenset({"username", "kind", "value"}),
    "read": frozenset({"username"}),
    "list": frozenset(),
}
OPERATIONS: Final[tuple[str, ...]] = tuple(PLACEHOLDERS)
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
DEFAULT_EXPECTED: Final = frozenset({200, 201, 202, 204})
RESPONSE_FIELDS: Final[dict[str, str]] = {
    "items": "",
    "username": "username",
    "external_id": "id",
    "enabled": "enabled",
    "attributes": "attributes",
    "memberships": "memberships",
}
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_MISSING: Final = object()


# -- templates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed string template: literal text and placeholders, nothing else."""

    parts: tuple[str | _Field, ...]

    @property
    def single(self) -> _Field | None:
        """The placeholder, when the template is exactly one placeholder."""
        if len(self.parts) == 1 and isinstance(self.parts[0], _Field):
            return self.parts[0]
        return None


def parse_template(text: str, allowed: frozenset[str], where: str) -> Template:
    """Parse ``text``; :class:`ConfigurationError` for unknown placeholders or stray braces."""
    parts: list[str | _Field] = []
    literal = ""
    position = 0
    for match in _TOKEN.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
            continue
        if token in ("{", "}"):
            raise ConfigurationError(
                f"{where}: unbalanced '{token}' in template {text!r} (write {token * 2} "
                "for a literal brace)"
            )
        name = (match.group(1) or "").strip()
        if name not in allowed:
            known = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none"
            raise ConfigurationError(
                f"{where}: unknown placeholder {{{name}}} in template {text!r}; "
                f"this operation knows: {known}"
            )
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(_Field(name))
    literal += text[position:]
    if literal:
        parts.append(literal)
    return Template(tuple(parts))


def _parse_body(value: Any, allowed: frozenset[str], where: str) -> Any:
    if isinstance(value, str):
        return parse_template(value, allowed, where)
    if isinstance(value, Mapping):
        return {str(k): _parse_body(v, allowed, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_parse_body(v, allowed, where) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise ConfigurationError(f"{where}: body holds a {type(value).__name__}, not JSON")


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    head, _, rest = name.partition(".")
    value = context.get(head, _MISSING)
    if rest:
        if not isinstance(value, Mapping):
            return _MISSING
        value = value.get(rest, _MISSING)
    return value


def _as_text(value: Any) -> str:
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render_path(template: Template, context: Mapping[str, Any]) -> str:
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        text = _as_text(_lookup(context, part.name))
        if text in ("", ".", ".."):
            raise PermanentError(
                f"{{{part.name}}} is {text!r}, which cannot be used as a URL path segment"
            )
        out.append(quote(text, safe=""))
    return "".join(out)


def render_body(node: Any, context: Mapping[str, Any], *, omit_missing: bool) -> Any:
    if isinstance(node, Template):
        single = node.single
        if single is not None:
            value = _lookup(context, single.name)
            return None if value is _MISSING else value
        return "".join(
            p if isinstance(p, str) else _as_text(_lookup(context, p.name)) for p in node.parts
        )
    if isinstance(node, dict):
        rendered: dict[str, Any] = {}
        for key, child in node.items():
            if omit_missing and isinstance(child, Template):
                single = child.single
                if single is not None and _lookup(context, single.name) is _MISSING:
                    continue
            rendered[key] = render_body(child, context, omit_missing=omit_missing)
        return rendered
    if isinstance(node, list):
        return [render_body(child, context, omit_missing=omit_missing) for child in node]
    return node


@dataclass(frozen=True, slots=True)
class RequestSpec:
    operation: str
    method: str
    path: Template
    body: Any = None  # parsed JSON tree with Template leaves; None: no body
    expected: frozenset[int] = DEFAULT_EXPECTED
    response: Mapping[str, str] = field(default_factory=lambda: dict(RESPONSE_FIELDS))


def parse_request(operation: str, spec: Any, where: str) -> RequestSpec:
    where = f"{where} request '{operation}'"
    if operation not in PLACEHOLDERS:
        raise ConfigurationError(f"{where}: unknown operation; use: {', '.join(OPERATIONS)}")
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where}: must be a mapping with method and path")
    extra = sorted(set(spec) - {"method", "path", "body", "expected", "response"})
    if extra:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(map(str, extra))}")
    method = str(spec.get("method", "")).upper()
    if method not in METHODS:
        raise ConfigurationError(f"{where}: method must be one of {', '.join(sorted(METHODS))}")
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigurationError(f"{where}: needs a 'path'")
    allowed = PLACEHOLDERS[operation]
    body: Any = None
    if "body" in spec and spec["body"] is not None:
        raw = spec["body"]
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{where}: body is not JSON ({exc})") from None
        body = _parse_body(raw, allowed, where)
    expected_raw = spec.get("expected")
    if expected_raw is None:
        expected = DEFAULT_EXPECTED
    else:
        if isinstance(expected_raw, int):
            expected_raw = [expected_raw]
        try:
            expected = frozenset(int(code) for code in expected_raw)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: expected must be a list of status codes") from exc
        if not expected or not all(100 <= code <= 599 for code in expected):
            raise ConfigurationError(f"{where}: expected must be HTTP status codes")
    response = dict(RESPONSE_FIELDS)
    given = spec.get("response") or {}
    if not isinstance(given, Mapping) or set(given) - set(RESPONSE_FIELDS):
        raise ConfigurationError(
            f"{where}: response must map some of {', '.join(RESPONSE_FIELDS)} to field paths"
        )
    response.update({str(k): str(v) for k, v in given.items()})
    return RequestSpec(
        operation=operation,
        method=method,
        path=parse_template(path, allowed, where),
        body=body,
        expected=expected,
        response=response,
    )


# -- the connector --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``auth_header_env`` is the NAME of the variable holding the Authorization value."""

    base_url: str
    requests: Mapping[str, Any]
    auth_header_env: str | None = None
    timeout: float = 10.0


_PAIRS: Final = (("enable", "disable"), ("add_member", "remove_member"))


class WebhookConnector(Connector):
    """One HTTP service driven by configured request templates."""

    def __init__(self, settings: WebhookSettings, *, name: str = "webhook") -> None:
        where = f"target '{name}' (webhook)"
        if not settings.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{where}: base_url must be an http:// or https:// URL")
        if settings.timeout <= 0:
            raise ConfigurationError(f"{where}: timeout must be more than zero")
        if not isinstance(settings.requests, Mapping) or not settings.requests:
            raise ConfigurationError(f"{where}: 'requests' must map operations to requests")
        self.specs: dict[str, RequestSpec] = {
            str(op): parse_request(str(op), spec, where) for op, spec in settings.requests.items()
        }
        for a, b in _PAIRS:
            if (a in self.specs) != (b in self.specs):
                raise ConfigurationError(f"{where}: configure '{a}' and '{b}' together")
        self.settings = settings
        self.name = name
        self.capabilities = self._derive_capabilities()
        self._describe = f"webhook '{name}' at {settings.base_url}"
        self._http: httpx.Client | None = None
        self._secret: str | None = None

    def _derive_capabilities(self) -> frozenset[Capability]:
        by_operation = {
            "create": Capability.CREATE,
            "update": Capability.UPDATE,
            "rename": Capability.RENAME,
            "enable": Capability.ENABLE_DISABLE,
            "delete": Capability.DELETE,
            "add_member": Capability.MEMBERSHIPS,
            "read": Capability.READ,
            "list": Capability.LIST,
        }
        return frozenset(c for op, c in by_operation.items() if op in self.specs)

    @property
    def write_only(self) -> bool:
        return "read" not in self.specs and "list" not in self.specs

    # -- plumbing --------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        headers = {"Accept": "application/json"}
        env = self.settings.auth_header_env
        if env:
            secret = os.environ.get(env)
            if not secret:
                raise PermanentError(
                    f"{self._describe}: the Authorization environment variable {env} is not set"
                )
            headers["Authorization"] = secret
            self._secret = secret
        self._http = httpx.Client(
            base_url=self.settings.base_url.rstrip("/"),
            headers=headers,
            timeout=self.settings.timeout,
        )
        return self._http

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _spec(self, operation: str) -> RequestSpec:
        spec = self.specs.get(operation)
        if spec is None:
            raise PermanentError(f"{self._describe} has no '{operation}' request configured")
        return spec

    def _send(self, operation: str, context: Mapping[str, Any]) -> httpx.Response:
        """Send one operation's request; transport, busy and credential failures raise."""
        spec = self._spec(operation)
        client = self._client()
        path = render_path(spec.path, context)
        headers: dict[str, str] = {}
        content: bytes | None = None
        if spec.body is not None:
            body = render_body(spec.body, context, omit_missing=operation == "update")
            content = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        env = self.settings.auth_header_env
        hint = (
            f"check the Authorization value in environment variable {env}"
            if env
            else "no Authorization is configured (auth_header_env)"
        )
        return send(
            client,
            spec.method,
            path,
            describe=self._describe,
            credentials_hint=hint,
            during=f" on {operation}",
            content=content,
            headers=headers,
        )

    def _refused(self, operation: str, username: str, response: httpx.Response) -> PermanentError:
        detail = self._scrub(response.text.strip().replace("\n", " "))[:200]
        text = f"{self._describe} refused {operation} of '{username}' (HTTP {response.status_code})"
        return PermanentError(f"{text}: {detail}" if detail else text)

    def _ok(self, operation: str, response: httpx.Response) -> bool:
        return response.status_code in self.specs[operation].expected

    def _json(self, operation: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise PermanentError(
                f"{self._describe} answered {operation} with something that is not JSON"
            ) from None

    def _simple(
        self, operation: str, username: str, context: Mapping[str, Any], *, absent_ok: bool
    ) -> None:
        response = self._send(operation, context)
        if self._ok(operation, response):
            return
        if response.status_code == 404:
            if absent_ok:
                return
            raise NotFoundError(f"no account '{username}' in {self._describe} ({operation})")
        raise self._refused(operation, username, response)

    # -- the protocol ----------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        context = {"username": username, "attributes": dict(attributes)}
        response = self._send("create", context)
        if self._ok("create", response):
            found = None
            if response.content:
                try:
                    found = _path(response.json(), self.specs["create"].response["external_id"])
                except ValueError:
                    found = None
            if found not in (None, ""):
                return str(found)
            if "read" in self.specs:
                account = self.read(username)
                if account is not None:
                    return account.external_id
            return username
        if response.status_code == 409:
            existing = self.read(username) if "read" in self.specs else None
            if existing is None:
                raise ConflictError(
                    f"username '{username}' already exists in {self._describe} (HTTP 409)"
                )
            check_owner(username, existing.attributes, attributes)
            return existing.external_id
        raise self._refused("create", username, response)

    def update(self, username: str, changes: Attributes) -> None:
        context = {"username": username, "attributes": dict(changes)}
        self._simple("update", username, context, absent_ok=False)

    def rename(self, username: str, new_username: str) -> None:
        response = self._send("rename", {"username": username, "new_username": new_username})
        if self._ok("rename", response):
            return
        if response.status_code == 409:
            raise ConflictError(f"username '{new_username}' already exists in {self._describe}")
        if response.status_code == 404:
            if "read" in self.specs and self.read(new_username) is not None:
                return  # already renamed
            raise NotFoundError(f"no account '{username}' in {self._describe} (rename)")
        raise self._refused("rename", username, response)

    def enable(self, username: str) -> None:
        self._simple("enable", username, {"username": username}, absent_ok=False)

    def disable(self, username: str) -> None:
        self._simple("disable", username, {"username": username}, absent_ok=False)

    def delete(self, username: str) -> None:
        self._simple("delete", username, {"username": username}, absent_ok=True)

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        context = {"username": username, "kind": kind, "value": value}
        self._simple("add_member", username, context, absent_ok=False)

    def remove_member(self, username: str, kind: str, value: str) -> None:
        context = {"username": username, "kind": kind, "value": value}
        self._simple("remove_member", username, context, absent_ok=True)

    def read(self, username: str) -> RemoteAccount | None:
        response = self._send("read", {"username": username})
        if response.status_code == 404:
            return None
        if not self._ok("read", response):
            raise self._refused("read", username, response)
        return self._account(self._json("read", response), self.specs["read"].response)

    def list(self) -> Iterator[RemoteAccount]:
        response = self._send("list", {})
        if not self._ok("list", response):
            raise self._refused("list", "", response)
        fields = self.specs["list"].response
        items = _path(self._json("list", response), fields["items"])
        if not isinstance(items, list):
            raise PermanentError(f"{self._describe} did not answer list with a list")
        return iter([self._account(item, fields) for item in items])

    def _account(self, data: Any, fields: Mapping[str, str]) -> RemoteAccount:
        if not isinstance(data, Mapping):
            raise PermanentError(f"{self._describe} answered with an account that is not an object")
        username = _path(data, fields["username"])
        if not username:
            raise PermanentError(f"{self._describe} answered with an account without username")
        external_id = _path(data, fields["external_id"])
        attributes = _path(data, fields["attributes"])
        return RemoteAccount(
            username=str(username),
            external_id=str(external_id) if external_id not in (None, "") else str(username),
            enabled=_truthy(_path(data, fields["enabled"])),
            attributes=dict(attributes) if isinstance(attributes, Mapping) else {},
            memberships=frozenset(self._memberships(_path(data, fields["memberships"]))),
        )

    def _memberships(self, raw: Any) -> Iterator[Membership]:
        for item in raw or []:
            if isinstance(item, Mapping) and "kind" in item and "value" in item:
                yield str(item["kind"]), str(item["value"])
            elif isinstance(item, str) and ":" in item:
                kind, _, value = item.partition(":")
                yield kind, value
            elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
                yield str(item[0]), str(item[1])
            else:
                raise PermanentError(f"{self._describe} answered with membership {item!r}")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None


def _path(data: Any, dotted: str) -> Any:
    if not dotted:
        return data
    for key in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "active", "enabled")
    return bool(value)


def build_webhook(target_key: str, settings: Mapping[str, Any]) -> Connector:
    """Registry factory for ``connector: webhook``."""
    allowed = {"base_url", "auth_header_env", "timeout", "requests"}
    reject_unknown_settings(target_key, settings, allowed)
    base_url = require_text_setting(target_key, "webhook", settings, "base_url")
    env = settings.get("auth_header_env")
    require_secret_env(target_key, env, "Authorization header")
    try:
        timeout = float(settings.get("timeout", 10.0))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"target '{target_key}': timeout must be a number") from exc
    requests = settings.get("requests")
    if not isinstance(requests, Mapping):
        raise ConfigurationError(
            f"target '{target_key}' (webhook) needs 'requests': operation → request template"
        )
    return WebhookConnector(
        WebhookSettings(
            base_url=base_url,
            requests=requests,
            auth_header_env=str(env) if env is not None else None,
            timeout=timeout,
        ),
        name=target_key,
    )
