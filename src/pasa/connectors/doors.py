"""Door access control connector: cardholders and access groups over a vendor-style REST API.

The API follows the cardholder / access-group model of enterprise access control systems
such as Gallagher Command Centre (see ``docs/connectors.md``); it is modelled from general
knowledge, not any vendor's exact API. Estates and security teams own these systems; PASA
keeps each person's cardholder record, its "authorised" flag and its door access in step.

Mapping (PASA → cardholder)
    username → personal data field ``pasaUsername`` (unique; setting ``username_field``);
    first_name / last_name → ``firstName`` / ``lastName``; department → ``division``;
    employee_number → personal data field ``employeeNumber`` (the owner check of ``create``);
    display_name, email, organisation, job_title, manager_employee_number → personal data
    fields ``displayName``, ``email``, ``organisation``, ``jobTitle``,
    ``managerEmployeeNumber``; enabled → ``authorised`` (disabling bars every card at once).
    ``external_id`` is the cardholder ``id``.
Memberships
    Only kind ``door_zone``: a zone is an access group, by name, or through the ``zones``
    setting (PASA zone → access-group name). Access groups are a fixed catalogue owned by
    estates; PASA never creates them, and an unknown zone is a :class:`PermanentError`
    naming the zone and the known ones. An access-group membership may carry validity
    (``from`` / ``until``): ``add_member(..., valid_from=, valid_to=)`` (the connector
    declares :attr:`Capability.VALIDITY_DATES`, so the worker passes a membership
    operation's ``valid_from`` / ``valid_to``), see :func:`door_validity`; the default is
    open-ended. Re-adding a membership with other dates updates them (one entry, never two).
Errors
    connection refused, timeouts, 5xx → :class:`TransientError` (429 and 503 carry
    ``Retry-After`` as ``retry_after``); 401 / 403 → :class:`PermanentError` naming the
    environment variable of the API key, never the key; 404 → :class:`NotFoundError`; 409
    → :class:`ConflictError`; other refusals → :class:`PermanentError` with the message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import httpx

from pasa.connectors.base import (
    ALL_CAPABILITIES,
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

DOOR_ZONE: Final = "door_zone"
KNOWN_SHOWN: Final = 10  # how many known zones an error message lists
# PASA attribute → (cardholder field, personal data field); exactly one is set.
ATTRIBUTE_MAP: Final[dict[str, tuple[str | None, str | None]]] = {
    "first_name": ("firstName", None),
    "last_name": ("lastName", None),
    "department": ("division", None),
    "employee_number": (None, "employeeNumber"),
    "display_name": (None, "displayName"),
    "email": (None, "email"),
    "organisation": (None, "organisation"),
    "job_title": (None, "jobTitle"),
    "manager_employee_number": (None, "managerEmployeeNumber"),
}

Validity = str | date | datetime | None


@dataclass(frozen=True, slots=True)
class DoorSettings:
    """Where the door system is and how to talk to it.

    ``api_key_env`` is the NAME of the environment variable holding the API key (never the
    key). ``zones`` maps PASA door zones to access-group names; empty = the same name.
    """

    base_url: str
    api_key_env: str
    zones: Mapping[str, str] = field(default_factory=dict)
    username_field: str = "pasaUsername"
    timeout: float = 10.0
    page_size: int = 100


def validity_time(value: Validity) -> str | None:
    """An ISO 8601 timestamp with a zone; a date is midnight UTC, a naive time is UTC."""
    if value is None or value == "":
        return None
    when: datetime
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise PermanentError(
                f"door zone validity '{value}' is not an ISO 8601 date or time"
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat()


def door_validity(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(from, until)`` of a membership payload's optional ``valid_from`` / ``valid_to``
    (``valid_until`` is accepted for ``valid_to``)."""
    valid_from = validity_time(payload.get("valid_from"))
    valid_until = validity_time(payload.get("valid_to", payload.get("valid_until")))
    if (
        valid_from
        and valid_until
        and datetime.fromisoformat(valid_until) <= datetime.fromisoformat(valid_from)
    ):
        raise PermanentError(
            f"door zone validity ends ({valid_until}) before it starts ({valid_from})"
        )
    return valid_from, valid_until


def _same_time(a: Any, b: str | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return datetime.fromisoformat(str(a)) == datetime.fromisoformat(b)
    except ValueError:
        return False


class DoorConnector(Connector):
    """One door access control system (cardholders, access groups)."""

    capabilities = ALL_CAPABILITIES | {Capability.VALIDITY_DATES}

    def __init__(self, settings: DoorSettings, *, name: str = "doors") -> None:
        if settings.page_size < 1:
            raise ConfigurationError(f"target '{name}': page_size must be at least 1")
        self.settings = settings
        self.name = name
        self._describe = f"door system '{name}' at {settings.base_url}"
        self._http: httpx.Client | None = None
        self._groups: dict[str, str] | None = None  # access-group name → href

    # -- plumbing --------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is not None:
            return self._http
        env = self.settings.api_key_env
        key = os.environ.get(env)
        if not key:
            raise PermanentError(
                f"{self._describe}: the API key environment variable {env} is not set"
            )
        self._http = httpx.Client(
            base_url=self.settings.base_url.rstrip("/"),
            headers={"Authorization": f"GGL-API-KEY {key}", "Accept": "application/json"},
            timeout=self.settings.timeout,
        )
        return self._http

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call; transport failures, 429/5xx and 401/403 become connector errors."""
        client = self._client()
        if url.startswith("http") and not self._stays_on_server(client, url):
            raise PermanentError(f"{self._describe} pointed to another server ({url})")
        return send(
            client,
            method,
            url,
            describe=self._describe,
            credentials_hint=(f"check the key in environment variable {self.settings.api_key_env}"),
            refused="the API key",
            **kwargs,
        )

    @staticmethod
    def _stays_on_server(client: httpx.Client, url: str) -> bool:
        """A ``next``/``href`` link must not send the API key to another host."""
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        base = client.base_url
        return (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)

    def _refused(self, response: httpx.Response, doing: str) -> PermanentError:
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            message = None
        text = f"{self._describe} refused to {doing} (HTTP {response.status_code})"
        if message:
            text += f": {message}"
        if response.status_code == 404:
            return NotFoundError(text)
        if response.status_code == 409:
            return ConflictError(text)
        return PermanentError(text)

    def _json(self, response: httpx.Response, doing: str) -> Any:
        if response.status_code >= 300:
            raise self._refused(response, doing)
        try:
            return response.json()
        except ValueError:
            raise PermanentError(
                f"{self._describe} answered {doing} with something other than JSON"
            ) from None

    def _pages(self, path: str, params: Mapping[str, str], doing: str) -> Iterator[Any]:
        url: str | None = path
        query: dict[str, Any] | None = {**params, "top": self.settings.page_size}
        while url:
            body = self._json(self._request("GET", url, params=query), doing)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise PermanentError(f"{self._describe} did not answer {doing} with results")
            yield from body["results"]
            nxt = body.get("next")
            url = nxt.get("href") if isinstance(nxt, dict) else None
            query = None  # the next link carries the query

    # -- cardholders -----------------------------------------------------------------------

    def _username_of(self, holder: Mapping[str, Any]) -> Any:
        return (holder.get("personalDataFields") or {}).get(self.settings.username_field)

    def _find(self, username: str) -> dict[str, Any] | None:
        field_name = self.settings.username_field
        for holder in self._pages(
            "/api/cardholders", {field_name: username}, f"search for cardholder '{username}'"
        ):
            if isinstance(holder, dict) and self._username_of(holder) == username:
                return holder
        return None

    def _need(self, username: str) -> dict[str, Any]:
        holder = self._find(username)
        if holder is None:
            raise NotFoundError(f"no cardholder '{username}' in {self._describe}")
        return holder

    def _patch(self, holder: Mapping[str, Any], body: Mapping[str, Any], doing: str) -> None:
        response = self._request("PATCH", f"/api/cardholders/{holder['id']}", json=body)
        if response.status_code >= 300:
            raise self._refused(response, doing)

    def _fields(self, attributes: Attributes) -> dict[str, Any]:
        """A cardholder body (without accessGroups) setting the given PASA attributes."""
        unknown = sorted(set(attributes) - set(ATTRIBUTE_MAP))
        if unknown:
            raise PermanentError(
                f"the door connector cannot set attribute(s) {', '.join(unknown)}; "
                f"it knows: {', '.join(ATTRIBUTE_MAP)}"
            )
        body: dict[str, Any] = {}
        personal: dict[str, Any] = {}
        for key, value in attributes.items():
            text = None if value is None or value == "" else str(value)
            top, pdf = ATTRIBUTE_MAP[key]
            if top:
                body[top] = text
            elif pdf:
                personal[pdf] = text
        if personal:
            body["personalDataFields"] = personal
        return body

    def _account(self, holder: Mapping[str, Any]) -> RemoteAccount:
        personal = holder.get("personalDataFields") or {}
        attributes: dict[str, Any] = {}
        for key, (top, pdf) in ATTRIBUTE_MAP.items():
            attributes[key] = holder.get(top) if top else personal.get(pdf or "")
        memberships: set[Membership] = set()
        for entry in holder.get("accessGroups") or []:
            name = (entry.get("accessGroup") or {}).get("name")
            if name:
                memberships.add((DOOR_ZONE, self._zone_of(str(name))))
        return RemoteAccount(
            username=str(self._username_of(holder)),
            external_id=str(holder["id"]),
            enabled=holder.get("authorised") is True,
            attributes=attributes,
            memberships=frozenset(memberships),
        )

    # -- access groups ---------------------------------------------------------------------

    def _catalogue(self, refresh: bool = False) -> dict[str, str]:
        if self._groups is None or refresh:
            groups: dict[str, str] = {}
            for group in self._pages("/api/access_groups", {}, "list its access groups"):
                if isinstance(group, dict) and group.get("name") and group.get("href"):
                    groups[str(group["name"])] = str(group["href"])
            self._groups = groups
        return self._groups

    def _zone_of(self, group_name: str) -> str:
        for zone, name in self.settings.zones.items():
            if name == group_name:
                return zone
        return group_name

    def _group_href(self, kind: str, zone: str) -> str:
        """The href of the access group a door zone is, or a clear PermanentError."""
        if kind != DOOR_ZONE:
            raise PermanentError(
                f"membership kind '{kind}' cannot be given by {self._describe}: "
                f"door systems hold door zones only (kind '{DOOR_ZONE}')"
            )
        mapping = self.settings.zones
        if mapping and zone not in mapping:
            raise PermanentError(
                f"door zone '{zone}' is not mapped to an access group for {self._describe}; "
                f"known zones: {_shortlist(mapping)}"
            )
        name = mapping.get(zone, zone)
        catalogue = self._catalogue()
        if name not in catalogue:
            catalogue = self._catalogue(refresh=True)  # estates may have added it meanwhile
        if name not in catalogue:
            known = _shortlist(mapping) if mapping else _shortlist(catalogue)
            via = f" (access group '{name}')" if name != zone else ""
            raise PermanentError(
                f"door zone '{zone}'{via} does not exist in {self._describe}; known zones: {known}"
            )
        return catalogue[name]

    @staticmethod
    def _entry_for(holder: Mapping[str, Any], group_href: str) -> dict[str, Any] | None:
        target = group_href.rstrip("/").rsplit("/", 1)[-1]
        for entry in holder.get("accessGroups") or []:
            href = str((entry.get("accessGroup") or {}).get("href") or "")
            if href.rstrip("/").rsplit("/", 1)[-1] == target:
                return dict(entry)
        return None

    # -- the protocol ----------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        body = self._fields(attributes)
        existing = self._find(username)
        if existing is None:
            body["authorised"] = True
            body["personalDataFields"] = {
                **body.get("personalDataFields", {}),
                self.settings.username_field: username,
            }
            response = self._request("POST", "/api/cardholders", json=body)
            if response.status_code != 409:
                created = self._json(response, f"create cardholder '{username}'")
                return str(created["id"])
            existing = self._find(username)  # created meanwhile
            if existing is None:
                raise self._refused(response, f"create cardholder '{username}'")
            body = self._fields(attributes)
        personal = existing.get("personalDataFields") or {}
        check_owner(username, {"employee_number": personal.get("employeeNumber")}, attributes)
        body["authorised"] = True
        self._patch(existing, body, f"update cardholder '{username}'")
        return str(existing["id"])

    def update(self, username: str, changes: Attributes) -> None:
        body = self._fields(changes)
        holder = self._need(username)
        if body:
            self._patch(holder, body, f"update cardholder '{username}'")

    def rename(self, username: str, new_username: str) -> None:
        holder = self._find(username)
        if holder is None:
            if self._find(new_username) is not None:
                return  # already renamed
            raise NotFoundError(f"no cardholder '{username}' in {self._describe}")
        if username == new_username:
            return
        if self._find(new_username) is not None:
            raise ConflictError(
                f"cannot rename cardholder '{username}' to '{new_username}' in "
                f"{self._describe}: that username is taken"
            )
        body = {"personalDataFields": {self.settings.username_field: new_username}}
        self._patch(holder, body, f"rename cardholder '{username}'")

    def _authorise(self, username: str, authorised: bool) -> None:
        holder = self._need(username)
        if holder.get("authorised") is not authorised:
            verb = "authorise" if authorised else "bar"
            self._patch(holder, {"authorised": authorised}, f"{verb} cardholder '{username}'")

    def enable(self, username: str) -> None:
        self._authorise(username, True)

    def disable(self, username: str) -> None:
        self._authorise(username, False)

    def delete(self, username: str) -> None:
        holder = self._find(username)
        if holder is None:
            return
        response = self._request("DELETE", f"/api/cardholders/{holder['id']}")
        if response.status_code >= 300 and response.status_code != 404:
            raise self._refused(response, f"delete cardholder '{username}'")

    def add_member(
        self,
        username: str,
        kind: str,
        value: str,
        *,
        valid_from: Validity = None,
        valid_to: Validity = None,
    ) -> None:
        start, end = door_validity({"valid_from": valid_from, "valid_to": valid_to})
        group_href = self._group_href(kind, value)
        holder = self._need(username)
        entry = self._entry_for(holder, group_href)
        if entry is None:
            change = {"add": [{"accessGroup": {"href": group_href}, "from": start, "until": end}]}
        elif _same_time(entry.get("from"), start) and _same_time(entry.get("until"), end):
            return
        else:
            change = {"update": [{"href": entry.get("href"), "from": start, "until": end}]}
        self._patch(holder, {"accessGroups": change}, f"give '{username}' door zone '{value}'")

    def remove_member(self, username: str, kind: str, value: str) -> None:
        group_href = self._group_href(kind, value)
        holder = self._find(username)
        if holder is None:
            return
        entry = self._entry_for(holder, group_href)
        if entry is None:
            return
        change = {"remove": [{"href": entry.get("href")}]}
        doing = f"remove door zone '{value}' from '{username}'"
        self._patch(holder, {"accessGroups": change}, doing)

    def read(self, username: str) -> RemoteAccount | None:
        holder = self._find(username)
        return self._account(holder) if holder is not None else None

    def list(self) -> Iterator[RemoteAccount]:
        """Every cardholder PASA manages (those with the username field; others skipped)."""
        for holder in self._pages("/api/cardholders", {}, "list cardholders"):
            if isinstance(holder, dict) and self._username_of(holder):
                yield self._account(holder)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        self._groups = None


def _shortlist(names: Mapping[str, Any]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:KNOWN_SHOWN])
    if len(ordered) > KNOWN_SHOWN:
        shown += f", … ({len(ordered)} in all)"
    return shown


def build_doors(target_key: str, settings: Mapping[str, Any]) -> Connector:
    """Registry factory for ``connector: door_system``."""
    allowed = {"base_url", "api_key_env", "zones", "username_field", "timeout", "page_size"}
    reject_unknown_settings(target_key, settings, allowed)
    base_url = require_text_setting(target_key, "door_system", settings, "base_url")
    env = settings.get("api_key_env")
    if not env or not isinstance(env, str):
        raise ConfigurationError(
            f"target '{target_key}' (door_system) needs 'api_key_env', the name of the "
            f"environment variable holding the API key"
        )
    require_secret_env(target_key, env, "door system API key")
    zones = settings.get("zones") or {}
    if not isinstance(zones, Mapping):
        raise ConfigurationError(
            f"target '{target_key}': 'zones' must map PASA door zones to access-group names"
        )
    try:
        timeout = float(settings.get("timeout", 10.0))
        page_size = int(settings.get("page_size", 100))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"target '{target_key}': timeout and page_size must be numbers"
        ) from exc
    return DoorConnector(
        DoorSettings(
            base_url=base_url,
            api_key_env=env,
            zones={str(k): str(v) for k, v in zones.items()},
            username_field=str(settings.get("username_field", "pasaUsername")),
            timeout=timeout,
            page_size=page_size,
        ),
        name=target_key,
    )
