"""SCIM 2.0 client connector (RFC 7643 / RFC 7644) built on ``scim2-client`` + ``scim2-models``.

Accounts are ``User`` resources with the enterprise extension
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User``); memberships are ``Group``
resources whose ``members`` list the user's SCIM id.

Mapping (PASA → SCIM)
    username → ``userName``; first_name / last_name → ``name.givenName`` / ``name.familyName``;
    display_name → ``displayName``; email → ``emails`` (one value, type ``work``, primary);
    job_title → ``title``; employee_number → enterprise ``employeeNumber`` (the owner check of
    ``create``); department → enterprise ``department``; organisation → enterprise
    ``organization``; manager_employee_number → enterprise ``manager.value`` = SCIM id of the
    user with that employee number (omitted when there is none; read back as ``None``);
    enabled → ``active``. ``external_id`` is the SCIM ``id``.
Memberships
    ``group`` → Group ``displayName`` as is; ``app_role`` → ``app:<role>``;
    ``door_zone`` → ``door:<zone>`` (and back by prefix). A group is created on its first
    ``add_member`` and never deleted. Membership changes are PATCH ``add`` / ``remove`` on
    ``members`` (without ``If-Match``: the server applies them to the current members, and
    adding a member it holds changes nothing, RFC 7644 §3.5.2.1), or a PUT of the group when
    the ServiceProviderConfig says PATCH is not supported.
Round trips
    The SCIM ids of users this connector created or found, and of groups it created or found,
    are kept in bounded caches (``cache_size`` names for ``cache_seconds``; users dropped on
    ``rename``/``delete`` or when a search no longer finds them). With PATCH, ``add_member``
    is then one request; a 404 for a remembered group (deleted meanwhile) looks it up once
    again. A new person with three memberships of known groups is four requests: POST User,
    three PATCHes, as a bare client keeping the ids.
Discovery
    The ServiceProviderConfig is read on first use: ``filter.supported`` decides between
    ``userName eq "x"`` filters and paging through every resource, ``patch.supported``
    between PATCH and PUT, ``etag.supported`` whether writes of a resource read first carry
    ``If-Match`` with the version it was read with (a 412 answer is a
    :class:`TransientError`: someone changed it in between; the retry re-reads it). Member
    PATCHes carry none (see Memberships).
Errors
    connection refused, timeouts, 5xx → :class:`TransientError` (429 and 503 carry
    ``Retry-After`` as ``retry_after``); 401 / 403 → :class:`PermanentError` naming the
    environment variable of the token, never the token; other SCIM errors →
    :class:`PermanentError` with the server's ``detail``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import httpx
from pydantic import ValidationError
from scim2_client import BaseSyncSCIMClient, SCIMClientException
from scim2_models import (
    Email,
    EnterpriseUser,
    Error,
    Group,
    GroupMember,
    ListResponse,
    Manager,
    Name,
    PatchOp,
    PatchOperation,
    Resource,
    ResourceType,
    SCIMException,
    ScimProvider,
    SearchRequest,
    User,
)

from pasa.connectors.base import (
    ALL_CAPABILITIES,
    Attributes,
    ConflictError,
    Connector,
    Membership,
    NotFoundError,
    PermanentError,
    RemoteAccount,
    TransientError,
    check_owner,
    reject_unknown_settings,
    require_secret_env,
    require_text_setting,
)
from pasa.connectors.http import send
from pasa.connectors.ldap import LookupCache
from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import ACCOUNT_ATTRIBUTE_NAMES

ScimUser = User[EnterpriseUser]
R = TypeVar("R")

ATTRIBUTE_NAMES = ACCOUNT_ATTRIBUTE_NAMES
KIND_PREFIXES: Final[dict[str, str]] = {"app_role": "app:", "door_zone": "door:"}
_PATCH_ADD = PatchOperation.Op.add
_PATCH_REMOVE = PatchOperation.Op.remove
_PATCH_REPLACE = PatchOperation.Op.replace_


@dataclass(frozen=True, slots=True)
class ScimSettings:
    """Where the SCIM service is and how to talk to it.

    ``token_env`` is the NAME of the environment variable holding the bearer token (never
    the token itself); ``None`` sends no ``Authorization`` header.
    """

    base_url: str
    token_env: str | None = None
    timeout: float = 10.0
    page_size: int = 100
    cache_size: int = 10_000  # user and group ids remembered (0: no cache)
    cache_seconds: float = 300.0  # how long a remembered id is trusted without a search


def group_name(kind: str, value: str) -> str:
    """The Group ``displayName`` a membership lives in."""
    if kind == "group":
        return value
    prefix = KIND_PREFIXES.get(kind)
    if prefix is None:
        raise PermanentError(
            f"membership kind '{kind}' is not supported by the SCIM connector; "
            f"use one of: group, {', '.join(KIND_PREFIXES)}"
        )
    return prefix + value


def membership_of_group(display_name: str) -> Membership:
    for kind, prefix in KIND_PREFIXES.items():
        if display_name.startswith(prefix):
            return kind, display_name[len(prefix) :]
    return "group", display_name


def filter_string(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 §3.4.2.2: JSON string)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class _HttpxEngine(BaseSyncSCIMClient):
    """scim2-client over an ``httpx.Client``; HTTP-level failures become connector errors."""

    def __init__(self, client: httpx.Client, describe: str, token_hint: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.client = client
        self.describe = describe
        self.token_hint = token_hint

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        try:
            url = self.client.build_request("GET", endpoint).url
        except httpx.InvalidURL:
            return False
        return url.host == base.host and url.port == base.port and url.path.startswith(base.path)

    def _parse_json(self, response: Any) -> Any:
        return cast(httpx.Response, response).json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return send(
            self.client,
            method,
            url,
            describe=self.describe,
            credentials_hint=self.token_hint,
            **kwargs,
        )


class ScimConnector(Connector):
    """One SCIM 2.0 service provider."""

    capabilities = ALL_CAPABILITIES

    def __init__(self, settings: ScimSettings, *, name: str = "scim") -> None:
        if settings.page_size < 1:
            raise ConfigurationError(f"target '{name}': page_size must be at least 1")
        if settings.cache_size < 0 or settings.cache_seconds < 0:
            raise ConfigurationError(
                f"target '{name}': cache_size and cache_seconds must not be negative"
            )
        self.settings = settings
        self.name = name
        self._describe = f"SCIM service '{name}' at {settings.base_url}"
        self._http: httpx.Client | None = None
        self._scim: _HttpxEngine | None = None
        # userName -> id (case-insensitive, as userName is) and group displayName -> id.
        self._user_ids: LookupCache[str] = LookupCache(settings.cache_size, settings.cache_seconds)
        self._group_ids: LookupCache[str] = LookupCache(
            settings.cache_size, settings.cache_seconds, fold_case=False
        )

    # -- plumbing --------------------------------------------------------------------------

    def _client(self) -> _HttpxEngine:
        if self._scim is not None:
            return self._scim
        headers = {"Accept": "application/scim+json"}
        env = self.settings.token_env
        if env:
            token = os.environ.get(env)
            if not token:
                raise PermanentError(
                    f"{self._describe}: the bearer token environment variable {env} is not set"
                )
            headers["Authorization"] = f"Bearer {token}"
            hint = f"check the bearer token in environment variable {env}"
        else:
            hint = "no bearer token is configured (token_env)"
        self._http = httpx.Client(
            base_url=self.settings.base_url.rstrip("/"),
            headers=headers,
            timeout=self.settings.timeout,
        )
        provider = ScimProvider(
            models=(User, EnterpriseUser, Group),
            resource_types=(
                ResourceType.from_resource(ScimUser),
                ResourceType.from_resource(Group),
            ),
        )
        scim = _HttpxEngine(
            self._http, self._describe, hint, provider=provider, raise_scim_errors=False
        )
        self._call(lambda: scim.discover(schemas=False, resource_types=False))
        self._scim = scim
        return scim

    def _call(self, action: Callable[[], R]) -> R:
        """Run one scim2-client call, turning client/model failures into connector errors."""
        try:
            return action()
        except (TransientError, PermanentError):
            raise
        except SCIMException as exc:
            raise self._scim_error(exc.status, exc.scim_type, exc.detail) from None
        except SCIMClientException as exc:
            raise PermanentError(f"{self._describe} answered unexpectedly: {exc}") from None
        except ValidationError as exc:
            raise PermanentError(f"{self._describe}: invalid SCIM payload: {exc}") from None

    def _scim_error(self, status: Any, scim_type: Any, detail: Any) -> PermanentError:
        text = f"{self._describe} refused the request (HTTP {status}"
        text += f", {scim_type})" if scim_type else ")"
        if detail:
            text += f": {detail}"
        code = int(status) if str(status or "").isdigit() else 0
        if code == 412:
            # Our version was stale; the retry reads the resource again.
            raise TransientError(text + "; the resource changed meanwhile")
        if code == 404:
            return NotFoundError(text)
        if code == 409:
            return ConflictError(text)
        return PermanentError(text)

    def _checked(self, result: R | Error) -> R:
        if isinstance(result, Error):
            raise self._scim_error(result.status, result.scim_type, result.detail)
        return result

    @property
    def _config_flags(self) -> tuple[bool, bool, bool]:
        config = self._client().provider.config
        if config is None:
            return False, False, False
        patch = bool(config.patch and config.patch.supported)
        filters = bool(config.filter and config.filter.supported)
        etag = bool(config.etag and config.etag.supported)
        return patch, filters, etag

    def _if_match(self, version: str | None) -> dict[str, Any]:
        if version and self._config_flags[2]:
            return {"headers": {"If-Match": version}}
        return {}

    # -- searching -------------------------------------------------------------------------

    def _pages(self, model: type[R], scim_filter: str | None = None) -> Iterator[R]:
        scim = self._client()
        resource_model = cast("type[Resource[Any]]", model)
        start = 1
        while True:
            request: SearchRequest[Any] = SearchRequest(
                filter=scim_filter, start_index=start, count=self.settings.page_size
            )
            page = self._call(
                lambda request=request: self._checked(  # type: ignore[misc]
                    scim.query(resource_model, query_parameters=request)
                )
            )
            if not isinstance(page, ListResponse):
                raise PermanentError(f"{self._describe} did not answer a search with a list")
            resources = list(page.resources or [])
            yield from cast(list[R], resources)
            start += len(resources)
            total = page.total_results or 0
            if not resources or start > total:
                return

    def _find(self, model: type[R], attribute: str, value: str) -> R | None:
        if self._config_flags[1]:
            for found in self._pages(model, f"{attribute} eq {filter_string(value)}"):
                return found
            return None
        for found in self._pages(model):
            if _attribute_value(found, attribute) == value:
                return found
        return None

    def _user(self, username: str) -> ScimUser | None:
        user = self._find(ScimUser, "userName", username)
        if user is None or not user.id:
            self._user_ids.drop(username)
        else:
            self._user_ids.put(username, str(user.id))
        return user

    def _user_id(self, username: str) -> str:
        """The user's SCIM id: remembered, or searched for (NotFoundError if absent)."""
        remembered = self._user_ids.get(username)
        return remembered if remembered is not None else str(self._need_user(username).id)

    def _group(self, display_name: str) -> Group | None:
        group = self._find(Group, "displayName", display_name)
        if group is None or not group.id:
            self._group_ids.drop(display_name)
        else:
            self._group_ids.put(display_name, str(group.id))
        return group

    def _need_user(self, username: str) -> ScimUser:
        user = self._user(username)
        if user is None:
            raise NotFoundError(f"no SCIM user '{username}' in {self._describe}")
        return user

    def _groups_of(self, user_id: str) -> list[Group]:
        if self._config_flags[1]:
            return list(self._pages(Group, f"members.value eq {filter_string(user_id)}"))
        return [g for g in self._pages(Group) if any(m.value == user_id for m in g.members or [])]

    def _manager_id(self, employee_number: Any) -> str | None:
        if not employee_number:
            return None
        manager = self._find(
            ScimUser, f"{EnterpriseUser.__schema__}:employeeNumber", str(employee_number)
        )
        return manager.id if manager is not None else None

    def _manager_number(self, manager_id: str | None, cache: dict[str, Any]) -> Any:
        if not manager_id:
            return None
        if manager_id not in cache:
            scim = self._client()
            result = self._call(
                lambda: scim.query(ScimUser, manager_id, expected_status_codes=None)
            )
            enterprise = result[EnterpriseUser] if isinstance(result, User) else None
            cache[manager_id] = enterprise.employee_number if enterprise else None
        return cache[manager_id]

    # -- mapping ---------------------------------------------------------------------------

    def _apply(self, user: ScimUser, attributes: Attributes) -> None:
        # A value the SCIM schema refuses (an address at a reserved domain, say) will never
        # be accepted: park the operation at once with the reason instead of retrying it.
        try:
            self._set_attributes(user, attributes)
        except ValidationError as exc:
            raise PermanentError(f"{self._describe}: invalid SCIM attribute value: {exc}") from None

    def _set_attributes(self, user: ScimUser, attributes: Attributes) -> None:
        unknown = sorted(set(attributes) - set(ATTRIBUTE_NAMES))
        if unknown:
            raise PermanentError(
                f"the SCIM connector cannot set attribute(s) {', '.join(unknown)}; "
                f"it knows: {', '.join(ATTRIBUTE_NAMES)}"
            )
        enterprise = user[EnterpriseUser] or EnterpriseUser()
        name = user.name or Name()
        for key, value in attributes.items():
            text = None if value is None or value == "" else str(value)
            if key == "first_name":
                name.given_name = text
            elif key == "last_name":
                name.family_name = text
            elif key == "display_name":
                user.display_name = text
            elif key == "email":
                user.emails = (
                    [Email(value=text, type=Email.Type.work, primary=True)] if text else None
                )
            elif key == "job_title":
                user.title = text
            elif key == "employee_number":
                enterprise.employee_number = text
            elif key == "organisation":
                enterprise.organization = text
            elif key == "department":
                enterprise.department = text
            elif key == "manager_employee_number":
                manager_id = self._manager_id(text)
                enterprise.manager = Manager(value=manager_id) if manager_id else None
        user.name = name if (name.given_name or name.family_name) else None
        user[EnterpriseUser] = enterprise

    def _account(
        self, user: ScimUser, groups: list[Group], manager_cache: dict[str, Any]
    ) -> RemoteAccount:
        enterprise = user[EnterpriseUser] or EnterpriseUser()
        name = user.name or Name()
        emails = user.emails or []
        primary = next((e for e in emails if e.primary), emails[0] if emails else None)
        manager = enterprise.manager.value if enterprise.manager else None
        attributes: dict[str, Any] = {
            "first_name": name.given_name,
            "last_name": name.family_name,
            "display_name": user.display_name,
            "email": str(primary.value) if primary and primary.value else None,
            "employee_number": enterprise.employee_number,
            "organisation": enterprise.organization,
            "department": enterprise.department,
            "job_title": user.title,
            "manager_employee_number": self._manager_number(manager, manager_cache),
        }
        return RemoteAccount(
            username=str(user.user_name),
            external_id=str(user.id),
            enabled=user.active is not False,
            attributes=attributes,
            memberships=frozenset(membership_of_group(str(g.display_name)) for g in groups),
        )

    # -- writes ----------------------------------------------------------------------------

    def _replace(self, user: ScimUser) -> ScimUser:
        scim = self._client()
        version = user.meta.version if user.meta else None
        result = self._call(
            lambda: self._checked(scim.replace(ScimUser, user, **self._if_match(version)))
        )
        return cast(ScimUser, result)

    def _patch_user(self, user: ScimUser, path: str, value: Any) -> None:
        """Set one core attribute by PATCH ``replace``, or by PUT without PATCH support."""
        scim = self._client()
        if self._config_flags[0]:
            version = user.meta.version if user.meta else None
            patch = PatchOp[ScimUser](
                operations=[PatchOperation[ScimUser](op=_PATCH_REPLACE, path=path, value=value)]
            )
            user_id = str(user.id)
            self._call(
                lambda: self._checked(
                    scim.modify(ScimUser, user_id, patch, **self._if_match(version))
                )
            )
            return
        if path == "userName":
            user.user_name = value
        else:
            user.active = value
        self._replace(user)

    def _patch_members(self, group_id: str, user_id: str, add: bool) -> None:
        """PATCH ``add`` / ``remove`` of one member; no ``If-Match``, as nothing was read."""
        scim = self._client()
        operation = (
            PatchOperation[Group](op=_PATCH_ADD, path="members", value=[{"value": user_id}])
            if add
            else PatchOperation[Group](
                op=_PATCH_REMOVE, path=f"members[value eq {filter_string(user_id)}]"
            )
        )
        patch = PatchOp[Group](operations=[operation])
        result = self._call(lambda: scim.modify(Group, group_id, patch))
        if isinstance(result, Error):
            if not add and str(result.status) == "400" and result.scim_type == "noTarget":
                return  # not a member (RFC 7644 §3.5.2.2): already removed
            raise self._scim_error(result.status, result.scim_type, result.detail)

    def _member_change(self, group: Group, user_id: str, add: bool) -> None:
        scim = self._client()
        version = group.meta.version if group.meta else None
        if self._config_flags[0]:
            self._patch_members(str(group.id), user_id, add)
            return
        members = [m for m in group.members or [] if m.value != user_id]
        if add:
            members.append(GroupMember(value=user_id))
        group.members = members or None
        self._call(lambda: self._checked(scim.replace(Group, group, **self._if_match(version))))

    # -- the protocol ----------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        scim = self._client()
        user = ScimUser(user_name=username, active=True)
        self._apply(user, attributes)
        result = self._call(lambda: scim.create(ScimUser, user))
        if isinstance(result, Error):
            if str(result.status) != "409":
                raise self._scim_error(result.status, result.scim_type, result.detail)
            existing = self._user(username)
            if existing is None:  # uniqueness on another attribute
                raise self._scim_error(result.status, result.scim_type, result.detail)
            have = existing[EnterpriseUser]
            check_owner(
                username,
                {"employee_number": have.employee_number if have else None},
                attributes,
            )
            self._apply(existing, attributes)
            if existing.active is False:
                existing.active = True
            return str(self._replace(existing).id)
        user_id = str(cast(ScimUser, result).id)
        self._user_ids.put(username, user_id)
        return user_id

    def update(self, username: str, changes: Attributes) -> None:
        user = self._need_user(username)
        self._apply(user, changes)
        self._replace(user)

    def rename(self, username: str, new_username: str) -> None:
        self._user_ids.drop(username)
        self._user_ids.drop(new_username)
        user = self._user(username)
        if user is None:
            if self._user(new_username) is not None:
                return  # already renamed
            raise NotFoundError(f"no SCIM user '{username}' in {self._describe}")
        if username == new_username:
            return
        self._user_ids.drop(username)
        self._patch_user(user, "userName", new_username)

    def enable(self, username: str) -> None:
        user = self._need_user(username)
        if user.active is not True:
            self._patch_user(user, "active", True)

    def disable(self, username: str) -> None:
        user = self._need_user(username)
        if user.active is not False:
            self._patch_user(user, "active", False)

    def delete(self, username: str) -> None:
        user = self._user(username)
        self._user_ids.drop(username)
        if user is None:
            return
        user_id = str(user.id)
        for group in self._groups_of(user_id):
            self._member_change(group, user_id, add=False)
        scim = self._client()
        version = user.meta.version if user.meta else None
        result = self._call(lambda: scim.delete(ScimUser, user_id, **self._if_match(version)))
        if isinstance(result, Error) and str(result.status) != "404":
            raise self._scim_error(result.status, result.scim_type, result.detail)

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        display_name = group_name(kind, value)
        user_id = self._user_id(username)
        group_id = self._group_ids.get(display_name)
        if group_id is not None and self._config_flags[0]:
            try:
                self._patch_members(group_id, user_id, add=True)
                return
            except NotFoundError:
                self._group_ids.drop(display_name)  # deleted meanwhile: look it up again
        group = self._group(display_name)
        if group is None:
            scim = self._client()
            created = self._call(
                lambda: scim.create(
                    Group, Group(display_name=display_name, members=[GroupMember(value=user_id)])
                )
            )
            if not isinstance(created, Error):
                if isinstance(created, Group) and created.id:
                    self._group_ids.put(display_name, str(created.id))
                return
            if str(created.status) != "409":
                raise self._scim_error(created.status, created.scim_type, created.detail)
            group = self._group(display_name)  # created meanwhile
            if group is None:
                raise self._scim_error(created.status, created.scim_type, created.detail)
        if any(m.value == user_id for m in group.members or []):
            return
        self._member_change(group, user_id, add=True)

    def remove_member(self, username: str, kind: str, value: str) -> None:
        display_name = group_name(kind, value)
        user_id = self._user_ids.get(username)
        if user_id is None:
            user = self._user(username)
            if user is None:
                return
            user_id = str(user.id)
        group_id = self._group_ids.get(display_name)
        if group_id is not None and self._config_flags[0]:
            try:
                self._patch_members(group_id, user_id, add=False)
                return
            except NotFoundError:
                self._group_ids.drop(display_name)  # deleted meanwhile: look it up again
        group = self._group(display_name)
        if group is None or not any(m.value == user_id for m in group.members or []):
            return
        self._member_change(group, user_id, add=False)

    def read(self, username: str) -> RemoteAccount | None:
        user = self._user(username)
        if user is None:
            return None
        return self._account(user, self._groups_of(str(user.id)), {})

    def list(self) -> Iterator[RemoteAccount]:
        memberships: dict[str, list[Group]] = {}
        for group in self._pages(Group):
            for member in group.members or []:
                if member.value:
                    memberships.setdefault(member.value, []).append(group)
        cache: dict[str, Any] = {}
        users = list(self._pages(ScimUser))
        for user in users:
            number = (user[EnterpriseUser] or EnterpriseUser()).employee_number
            cache[str(user.id)] = number
        for user in users:
            yield self._account(user, memberships.get(str(user.id), []), cache)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        self._scim = None


def _attribute_value(resource: Any, attribute: str) -> Any:
    if attribute == "userName":
        return resource.user_name
    if attribute == "displayName":
        return resource.display_name
    enterprise = resource[EnterpriseUser] if isinstance(resource, User) else None
    return enterprise.employee_number if enterprise else None


def build_scim(target_key: str, settings: Mapping[str, Any]) -> Connector:
    """Registry factory for ``connector: scim``."""
    allowed = {"base_url", "token_env", "timeout", "page_size", "cache_size", "cache_seconds"}
    reject_unknown_settings(target_key, settings, allowed)
    base_url = require_text_setting(target_key, "scim", settings, "base_url")
    token_env = settings.get("token_env")
    require_secret_env(target_key, token_env, "SCIM bearer token")
    try:
        timeout = float(settings.get("timeout", 10.0))
        page_size = int(settings.get("page_size", 100))
        cache_size = int(settings.get("cache_size", 10_000))
        cache_seconds = float(settings.get("cache_seconds", 300.0))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"target '{target_key}': timeout, page_size, cache_size and cache_seconds "
            "must be numbers"
        ) from exc
    return ScimConnector(
        ScimSettings(
            base_url=base_url,
            token_env=str(token_env) if token_env is not None else None,
            timeout=timeout,
            page_size=page_size,
            cache_size=cache_size,
            cache_seconds=cache_seconds,
        ),
        name=target_key,
    )
