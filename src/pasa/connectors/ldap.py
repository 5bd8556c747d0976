"""LDAP v3 / Active Directory connector (ldap3, one synchronous connection, re-bound on loss).

Accounts live under ``users_ou`` + ``base_dn``; groups under ``groups_ou`` + ``base_dn``.

``flavour="openldap"`` (inetOrgPerson)
    DN ``uid=USERNAME,<users>``; ``givenName``, ``sn``, ``cn``/``displayName``, ``mail``,
    ``employeeNumber``, ``ou`` (department), ``title``, ``o`` (organisation), ``manager``
    (the manager's DN, looked up by employee number; omitted when the manager has no entry).
    ``external_id`` is ``entryUUID``. *Disabled* means the ``employeeType`` value
    ``pasa-disabled`` (``disabled_marker``) is present; consuming systems filter with
    ``(!(employeeType=pasa-disabled))``. This needs no overlay (ppolicy), but it does not stop
    a bind to the directory itself.
``flavour="ad"`` (Active Directory)
    DN ``CN=USERNAME,<users>``, ``sAMAccountName``, ``userPrincipalName``
    (``USERNAME@upn_suffix``), ``company`` (organisation), ``department``; disabled is bit
    0x2 (ACCOUNTDISABLE) of ``userAccountControl``; ``external_id`` is ``objectGUID``.
    A ``password`` attribute is written as ``unicodePwd`` (``'"password"'`` in UTF-16-LE)
    and only over TLS; without TLS it is refused with :class:`PermanentError`.

Groups are ``groupOfNames`` (AD: ``group``) with ``member`` DNs, created on the first
``add_member``. Membership kinds map to group names: ``group`` → the value,
``door_zone`` → ``door-<zone>``, ``app_role`` → ``app-<role>`` (and back, by prefix).
``groupOfNames`` needs at least one member: removing the last one leaves the placeholder
member ``cn=pasa-empty-group,<base_dn>`` (a DN with no entry), removed again by the next
``add_member``; the group itself is never deleted.

Round trips (the common path of a new starter: ``create`` + N ``add_member``)
    ``create`` is one search (is the username taken anywhere under ``users``, by whom?) and
    one add carrying the post-read control (RFC 4527), which returns the new ``entryUUID``
    (Active Directory has no post-read: one more search for ``objectGUID``). The DN of every
    account the connector created or found is kept in a bounded cache (:class:`LookupCache`,
    ``cache_size`` entries for ``cache_seconds``), dropped on ``rename``/``delete`` and when a
    search no longer finds the account, so ``add_member`` is one modify: an existing member
    (``attributeOrValueExists``) is success, a missing group (``noSuchObject``) is created
    with the member. The placeholder is deleted in the same modify while the group may hold
    it (not yet seen by this process, or emptied by it); a group seen clean gets a plain add.
    One new person with three memberships in existing groups is five round trips.
"""

from __future__ import annotations

import contextlib
import math
import os
import ssl
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

from ldap3 import (
    AUTO_BIND_NONE,
    BASE,
    HASHED_SALTED_SHA,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NONE,
    SUBTREE,
    SYNC,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPInvalidDnError,
    LDAPResponseTimeoutError,
    LDAPStartTLSError,
)
from ldap3.protocol.rfc4527 import post_read_control
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn
from ldap3.utils.hashed import hashed

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
    TransientError,
    check_owner,
    reject_unknown_settings,
)
from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import ACCOUNT_ATTRIBUTE_NAMES

Flavour = Literal["openldap", "ad"]
T = TypeVar("T")
V = TypeVar("V")

ATTRIBUTE_NAMES = ACCOUNT_ATTRIBUTE_NAMES
PASSWORD: Final = "password"  # noqa: S105 - write-only attribute (AD unicodePwd); never read back

# PASA attribute -> directory attribute (manager_employee_number is resolved to ``manager``).
_COMMON: Final[dict[str, str]] = {
    "first_name": "givenName",
    "last_name": "sn",
    "display_name": "displayName",
    "email": "mail",
    "employee_number": "employeeNumber",
    "job_title": "title",
}
ATTRIBUTE_MAP: Final[dict[str, dict[str, str]]] = {
    "openldap": {**_COMMON, "organisation": "o", "department": "ou"},
    "ad": {**_COMMON, "organisation": "company", "department": "department"},
}

ACCOUNTDISABLE: Final = 0x2
NORMAL_ACCOUNT: Final = 0x200
PAGED_RESULTS_OID: Final = "1.2.840.113556.1.4.319"
POST_READ_OID: Final = "1.3.6.1.1.13.2"
GROUP_PREFIXES: Final[dict[str, str]] = {"door_zone": "door-", "app_role": "app-"}

# LDAP result codes used below (RFC 4511).
_SUCCESS, _TIME_LIMIT, _NO_SUCH_ATTRIBUTE, _VALUE_EXISTS = 0, 3, 16, 20
_NO_SUCH_OBJECT, _INVALID_CREDENTIALS, _BUSY, _UNAVAILABLE = 32, 49, 51, 52
_OBJECT_CLASS_VIOLATION, _ALREADY_EXISTS = 65, 68
_TRANSIENT_CODES: Final = frozenset({_TIME_LIMIT, _BUSY, _UNAVAILABLE})
_CONNECTION_ERRORS = (LDAPCommunicationError, LDAPResponseTimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class LdapSettings:
    url: str
    bind_dn: str
    bind_password_env: str  # the NAME of the environment variable holding the password
    base_dn: str
    users_ou: str = "ou=people"
    groups_ou: str = "ou=groups"
    flavour: Flavour = "openldap"
    use_tls: bool = False  # StartTLS on ldap://; an ldaps:// URL is TLS already
    timeout: float = 10.0
    page_size: int = 500
    upn_suffix: str | None = None  # AD userPrincipalName suffix; default from base_dn
    disabled_marker: str = "pasa-disabled"
    cache_size: int = 10_000  # account DNs and group states remembered (0: no cache)
    cache_seconds: float = 300.0  # how long a remembered DN is trusted without a search

    def __post_init__(self) -> None:
        if self.flavour not in ATTRIBUTE_MAP:
            raise ConfigurationError(
                f"LDAP flavour must be 'openldap' or 'ad', got '{self.flavour}'"
            )
        if not self.url.lower().startswith(("ldap://", "ldaps://")):
            raise ConfigurationError(f"LDAP url must start ldap:// or ldaps://, got '{self.url}'")
        if self.timeout <= 0 or self.page_size <= 0:
            raise ConfigurationError("LDAP timeout and page_size must be more than zero")
        if self.cache_size < 0 or self.cache_seconds < 0:
            raise ConfigurationError("LDAP cache_size and cache_seconds must not be negative")

    @property
    def tls(self) -> bool:
        return self.use_tls or self.url.lower().startswith("ldaps://")

    @property
    def users_dn(self) -> str:
        return f"{self.users_ou},{self.base_dn}"

    @property
    def groups_dn(self) -> str:
        return f"{self.groups_ou},{self.base_dn}"

    @property
    def placeholder_dn(self) -> str:
        return f"cn=pasa-empty-group,{self.base_dn}"

    @property
    def principal_suffix(self) -> str:
        if self.upn_suffix:
            return self.upn_suffix
        parts = [p.split("=", 1)[1] for p in self.base_dn.split(",") if p.lower().startswith("dc=")]
        return ".".join(parts)


# --- pure mapping functions (unit-tested without a server) --------------------------------


def user_rdn(username: str, flavour: Flavour) -> str:
    return f"{'uid' if flavour == 'openldap' else 'cn'}={escape_rdn(username)}"


def group_name(kind: str, value: str) -> str:
    """The directory group (``cn``) that holds a membership of ``kind``."""
    if kind == "group":
        return value
    prefix = GROUP_PREFIXES.get(kind)
    if prefix is None:
        raise PermanentError(
            f"the LDAP connector cannot hold memberships of kind '{kind}'; "
            "use group, door_zone or app_role"
        )
    return prefix + value


def membership_of_group(cn: str) -> Membership:
    for kind, prefix in GROUP_PREFIXES.items():
        if cn.startswith(prefix) and len(cn) > len(prefix):
            return kind, cn[len(prefix) :]
    return "group", cn


def uac_set_disabled(uac: int, disabled: bool) -> int:
    """``userAccountControl`` with the ACCOUNTDISABLE bit set or cleared, others kept."""
    return uac | ACCOUNTDISABLE if disabled else uac & ~ACCOUNTDISABLE


def uac_enabled(uac: int) -> bool:
    return not uac & ACCOUNTDISABLE


def encode_unicode_pwd(password: str) -> bytes:
    """AD's ``unicodePwd`` value: the password in double quotes, UTF-16-LE encoded."""
    return f'"{password}"'.encode("utf-16-le")


def password_values(password: str, flavour: Flavour, *, tls: bool) -> dict[str, Any]:
    """The directory attribute that sets ``password``; refuses anything but AD over TLS."""
    if flavour != "ad":
        raise PermanentError(
            "the LDAP connector sets passwords only on Active Directory (unicodePwd); "
            "OpenLDAP passwords are set through the directory's own self-service"
        )
    if not tls:
        raise PermanentError(
            "Active Directory accepts a password (unicodePwd) only over TLS; "
            "set use_tls or use an ldaps:// URL"
        )
    return {"unicodePwd": encode_unicode_pwd(password)}


def directory_values(
    attributes: Attributes, flavour: Flavour, *, manager_dn: str | None = None
) -> dict[str, str | None]:
    """PASA attributes → directory attributes (``None`` means absent / to be cleared).

    ``manager_employee_number`` becomes ``manager`` = ``manager_dn`` (resolved by the caller).
    Unknown attribute names are refused, so nothing is silently dropped.
    """
    unknown = sorted(set(attributes) - set(ATTRIBUTE_NAMES) - {PASSWORD})
    if unknown:
        raise PermanentError(
            f"the LDAP connector has no directory attribute for {', '.join(unknown)}; "
            f"it maps {', '.join(ATTRIBUTE_NAMES)}"
        )
    mapping = ATTRIBUTE_MAP[flavour]
    values: dict[str, str | None] = {}
    for name, value in attributes.items():
        if name in mapping:
            values[mapping[name]] = None if value is None or value == "" else str(value)
    if "manager_employee_number" in attributes:
        values["manager"] = manager_dn
    return values


def new_entry(
    username: str,
    attributes: Attributes,
    flavour: Flavour,
    *,
    manager_dn: str | None = None,
    upn_suffix: str = "",
    tls: bool = False,
) -> tuple[list[str], dict[str, Any]]:
    """Object classes and attributes of a new, enabled account entry."""
    values = directory_values(attributes, flavour, manager_dn=manager_dn)
    entry: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    password = attributes.get(PASSWORD)
    if password:
        entry.update(password_values(str(password), flavour, tls=tls))
    if flavour == "openldap":
        entry["uid"] = username
        entry.setdefault("sn", username)  # inetOrgPerson requires sn and cn
        entry["cn"] = values.get("displayName") or _full_name(attributes) or username
        return ["top", "person", "organizationalPerson", "inetOrgPerson"], entry
    entry["cn"] = username
    entry["sAMAccountName"] = username
    entry["userPrincipalName"] = f"{username}@{upn_suffix}" if upn_suffix else username
    entry["userAccountControl"] = str(NORMAL_ACCOUNT)
    return ["top", "person", "organizationalPerson", "user"], entry


def _dn_key(dn: str) -> str:
    """A DN compared the way the directory does (case and spacing ignored)."""
    try:
        return ",".join(f"{a.lower()}={v.lower()}" for a, v, _ in parse_dn(dn))
    except LDAPInvalidDnError:  # an unparsable DN is only ever a cache miss
        return dn.lower()


def _full_name(attributes: Attributes) -> str:
    parts = [attributes.get("first_name"), attributes.get("last_name")]
    return " ".join(str(p) for p in parts if p)


def pasa_attributes(
    entry: Mapping[str, list[str]], flavour: Flavour, *, manager_employee_number: str | None
) -> dict[str, Any]:
    """Directory attributes (decoded, names case-insensitive) → PASA attributes."""
    lowered = {k.lower(): v for k, v in entry.items()}
    result: dict[str, Any] = {}
    for name, attr in ATTRIBUTE_MAP[flavour].items():
        found = lowered.get(attr.lower())
        result[name] = found[0] if found else None
    result["manager_employee_number"] = manager_employee_number
    return result


# --- a bounded lookup cache (shared with the SCIM connector) -----------------------------


class LookupCache(Generic[V]):
    """What a connector looked up or made itself (a DN, an id), by name (case-insensitive
    unless ``fold_case`` is false).

    Bounded twice: at most ``size`` names (least recently used dropped first) and each for
    ``seconds`` after it was stored, so a change made behind the connector's back (an account
    deleted by hand) is noticed again within that time. ``size`` 0 disables it.
    """

    def __init__(
        self,
        size: int,
        seconds: float,
        *,
        fold_case: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.seconds = seconds
        self.fold_case = fold_case
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def _key(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def get(self, name: str) -> V | None:
        key = self._key(name)
        found = self._items.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return found[1]

    def put(self, name: str, value: V) -> None:
        if self.size <= 0:
            return
        key = self._key(name)
        self._items[key] = (self._clock() + self.seconds, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def drop(self, name: str) -> None:
        self._items.pop(self._key(name), None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# --- the connector ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    dn: str
    values: dict[str, list[str]]
    raw: dict[str, list[bytes]]


class LdapConnector(Connector):
    capabilities = ALL_CAPABILITIES | {Capability.SET_PASSWORD}

    def __init__(self, settings: LdapSettings, *, name: str = "ldap") -> None:
        self.settings = settings
        self.name = name
        self._conn: Any = None
        ad = settings.flavour == "ad"
        self._id_attr = "objectGUID" if ad else "entryUUID"
        self._user_class = "user" if ad else "inetOrgPerson"
        self._login_attr = "sAMAccountName" if ad else "uid"
        self._group_class = "group" if ad else "groupOfNames"
        self._read_attrs = [
            *ATTRIBUTE_MAP[settings.flavour].values(),
            "manager",
            self._login_attr,
            self._id_attr,
            "userAccountControl" if ad else "employeeType",
        ]
        # username -> DN of accounts this process created or found; group DN -> True once the
        # group is known to hold no placeholder member (see the module docstring).
        self._dns: LookupCache[str] = LookupCache(settings.cache_size, settings.cache_seconds)
        self._clean_groups: LookupCache[bool] = LookupCache(
            settings.cache_size, settings.cache_seconds
        )

    # -- connection ------------------------------------------------------------------------

    def _password(self) -> str:
        password = os.environ.get(self.settings.bind_password_env)
        if not password:
            raise PermanentError(
                f"{self.name}: the bind password is read from environment variable "
                f"{self.settings.bind_password_env}, which is not set"
            )
        return password

    def _new_server(self) -> Any:
        # A fresh Server per connection: ldap3 remembers addresses that failed.
        url = self.settings.url
        return Server(
            url,
            use_ssl=url.lower().startswith("ldaps://"),
            tls=Tls(validate=ssl.CERT_REQUIRED) if self.settings.tls else None,
            connect_timeout=self.settings.timeout,
            get_info=NONE,
        )

    def _connection(self) -> Any:
        if self._conn is not None and self._conn.bound and not self._conn.closed:
            return self._conn
        self._drop()
        server = self._new_server()
        conn = Connection(
            server,
            user=self.settings.bind_dn,
            password=self._password(),
            client_strategy=SYNC,
            auto_bind=AUTO_BIND_NONE,
            receive_timeout=max(1, math.ceil(self.settings.timeout)),
            raise_exceptions=False,
            auto_referrals=False,
        )
        conn.open()
        if self.settings.use_tls and not server.ssl:
            try:
                conn.start_tls()
            except LDAPStartTLSError as exc:
                raise PermanentError(f"{self.name}: StartTLS failed: {exc}") from exc
        if not conn.bind():
            code = conn.result.get("result")
            conn.unbind()
            if code == _INVALID_CREDENTIALS:
                raise PermanentError(
                    f"{self.name}: the directory refused to bind as {self.settings.bind_dn} "
                    f"(invalid credentials); check the password in environment variable "
                    f"{self.settings.bind_password_env}"
                )
            self._raise(conn, f"bind as {self.settings.bind_dn}")
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # the socket may already be gone
                conn.unbind()

    def _run(self, action: Callable[[Any], T], *, retry: bool = True) -> T:
        """Run ``action`` on the bound connection; re-bind once if the connection dropped."""
        for attempt in range(2):
            try:
                return action(self._connection())
            except _CONNECTION_ERRORS as exc:
                self._drop()
                if attempt or not retry:
                    raise TransientError(
                        f"{self.name}: directory at {self.settings.url} unavailable "
                        f"({type(exc).__name__})"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._drop()

    def _raise(self, conn: Any, what: str) -> None:
        result = conn.result or {}
        code = result.get("result")
        text = f"{result.get('description', 'error')} {result.get('message', '')}".strip()
        message = f"{self.name}: {what} failed: {text} (LDAP result {code})"
        if code in _TRANSIENT_CODES:
            raise TransientError(message)
        raise PermanentError(message)

    # -- lookups ---------------------------------------------------------------------------

    def _search(
        self, conn: Any, base: str, filt: str, attrs: list[str], *, scope: str = SUBTREE
    ) -> list[_Entry]:
        if not conn.search(base, filt, search_scope=scope, attributes=attrs):
            code = conn.result.get("result")
            if code == _SUCCESS:
                return []
            if code == _NO_SUCH_OBJECT and scope == BASE:
                return []
            self._raise(conn, f"search under {base}")
        return [self._entry(item) for item in conn.response if item.get("type") == "searchResEntry"]

    @staticmethod
    def _entry(item: Mapping[str, Any]) -> _Entry:
        raw: dict[str, list[bytes]] = {k: list(v) for k, v in item["raw_attributes"].items()}
        values = {k: [b.decode("utf-8", "replace") for b in v] for k, v in raw.items()}
        return _Entry(str(item["dn"]), values, raw)

    def _user_filter(self, username: str | None = None) -> str:
        base = f"(objectClass={self._user_class})"
        if username is None:
            return base
        return f"(&{base}({self._login_attr}={escape_filter_chars(username)}))"

    def _find(self, conn: Any, username: str) -> _Entry | None:
        found = self._search(
            conn, self.settings.users_dn, self._user_filter(username), self._read_attrs
        )
        if not found:
            self._dns.drop(username)
            return None
        self._dns.put(username, found[0].dn)
        return found[0]

    def _get(self, conn: Any, username: str) -> _Entry:
        entry = self._find(conn, username)
        if entry is None:
            raise NotFoundError(f"account '{username}' does not exist in {self.name}")
        return entry

    def _dn(self, username: str) -> str:
        return f"{user_rdn(username, self.settings.flavour)},{self.settings.users_dn}"

    def _account_dn(self, conn: Any, username: str) -> str:
        """The account's DN: remembered, or searched for (NotFoundError if absent)."""
        dn = self._dns.get(username)
        return dn if dn is not None else self._get(conn, username).dn

    def _external_id(self, entry: _Entry) -> str:
        if self.settings.flavour == "ad":
            raw = self._first_raw(entry, "objectGUID")
            return str(uuid.UUID(bytes_le=raw)) if raw and len(raw) == 16 else ""
        return self._first(entry, "entryUUID") or ""

    @staticmethod
    def _first(entry: _Entry, attr: str) -> str | None:
        for key, values in entry.values.items():
            if key.lower() == attr.lower() and values:
                return values[0]
        return None

    @staticmethod
    def _first_raw(entry: _Entry, attr: str) -> bytes | None:
        for key, values in entry.raw.items():
            if key.lower() == attr.lower() and values:
                return values[0]
        return None

    def _all(self, entry: _Entry, attr: str) -> list[str]:
        for key, values in entry.values.items():
            if key.lower() == attr.lower():
                return values
        return []

    def _enabled(self, entry: _Entry) -> bool:
        if self.settings.flavour == "ad":
            return uac_enabled(int(self._first(entry, "userAccountControl") or NORMAL_ACCOUNT))
        marker = self.settings.disabled_marker.lower()
        return all(v.lower() != marker for v in self._all(entry, "employeeType"))

    def _manager_dn(self, conn: Any, employee_number: Any) -> str | None:
        if employee_number is None or employee_number == "":
            return None
        filt = (
            f"(&{self._user_filter()}(employeeNumber={escape_filter_chars(str(employee_number))}))"
        )
        found = self._search(conn, self.settings.users_dn, filt, ["employeeNumber"])
        return found[0].dn if found else None

    def _manager_number(self, conn: Any, dn: str | None, cache: dict[str, str | None]) -> Any:
        if not dn:
            return None
        key = dn.lower()
        if key not in cache:
            found = self._search(conn, dn, "(objectClass=*)", ["employeeNumber"], scope=BASE)
            cache[key] = self._first(found[0], "employeeNumber") if found else None
        return cache[key]

    def _remote(
        self,
        conn: Any,
        entry: _Entry,
        memberships: frozenset[Membership],
        cache: dict[str, str | None],
    ) -> RemoteAccount:
        manager = self._manager_number(conn, self._first(entry, "manager"), cache)
        return RemoteAccount(
            username=self._first(entry, self._login_attr) or "",
            external_id=self._external_id(entry),
            enabled=self._enabled(entry),
            attributes=pasa_attributes(
                entry.values, self.settings.flavour, manager_employee_number=manager
            ),
            memberships=memberships,
        )

    def _groups_with(self, conn: Any, dn: str) -> list[_Entry]:
        filt = f"(&(objectClass={self._group_class})(member={escape_filter_chars(dn)}))"
        return self._search(conn, self.settings.groups_dn, filt, ["cn"])

    def _memberships(self, groups: list[_Entry]) -> frozenset[Membership]:
        return frozenset(
            membership_of_group(cn) for g in groups if (cn := self._first(g, "cn")) is not None
        )

    def _group_dn(self, cn: str) -> str:
        return f"cn={escape_rdn(cn)},{self.settings.groups_dn}"

    def _move_memberships(self, conn: Any, old_dn: str, new_dn: str) -> None:
        for group in self._groups_with(conn, old_dn):
            changes = {"member": [(MODIFY_ADD, [new_dn]), (MODIFY_DELETE, [old_dn])]}
            if not conn.modify(group.dn, changes):
                if conn.result.get("result") != _VALUE_EXISTS:
                    self._raise(conn, f"moving a member of {group.dn}")
                self._remove_from_group(conn, group.dn, old_dn)

    def _remove_from_group(self, conn: Any, group_dn: str, dn: str) -> None:
        if conn.modify(group_dn, {"member": [(MODIFY_DELETE, [dn])]}):
            return
        code = conn.result.get("result")
        if code in (_NO_SUCH_ATTRIBUTE, _NO_SUCH_OBJECT):
            return  # not a member, or no such group: already removed
        if code == _OBJECT_CLASS_VIOLATION:
            # groupOfNames needs a member: leave the placeholder in place of the last one.
            placeholder = self.settings.placeholder_dn
            changes = {"member": [(MODIFY_ADD, [placeholder]), (MODIFY_DELETE, [dn])]}
            self._clean_groups.drop(_dn_key(group_dn))
            if conn.modify(group_dn, changes):
                return
        self._raise(conn, f"removing {dn} from {group_dn}")

    def _modify(self, conn: Any, dn: str, changes: dict[str, list[tuple[str, list[Any]]]]) -> None:
        if changes and not conn.modify(dn, changes):
            if conn.result.get("result") == _NO_SUCH_OBJECT:
                raise NotFoundError(f"{dn} does not exist in {self.name}")
            self._raise(conn, f"modifying {dn}")

    def _changes(self, conn: Any, entry: _Entry, attributes: Attributes) -> dict[str, Any]:
        flavour = self.settings.flavour
        manager_dn = None
        if "manager_employee_number" in attributes:
            manager_dn = self._manager_dn(conn, attributes["manager_employee_number"])
        values = directory_values(attributes, flavour, manager_dn=manager_dn)
        username = self._first(entry, self._login_attr) or ""
        if flavour == "openldap":
            if "sn" in values and values["sn"] is None:
                values["sn"] = username  # required by inetOrgPerson
            if "displayName" in values:
                current = pasa_attributes(entry.values, flavour, manager_employee_number=None)
                current.update({k: v for k, v in attributes.items() if k in ATTRIBUTE_NAMES})
                values["cn"] = values["displayName"] or _full_name(current) or username
        changes: dict[str, Any] = {
            attr: [(MODIFY_REPLACE, [] if value is None else [value])]
            for attr, value in values.items()
        }
        password = attributes.get(PASSWORD)
        if password:
            for attr, value in password_values(
                str(password), flavour, tls=self.settings.tls
            ).items():
                changes[attr] = [(MODIFY_REPLACE, [value])]
        return changes

    # -- protocol --------------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        def action(conn: Any) -> str:
            # The search is kept (not add-first): an entry for this username may live at
            # another DN under users (a sub-OU, a cn= name), which an add would not detect.
            existing = self._find(conn, username)
            if existing is None:
                manager_dn = self._manager_dn(conn, attributes.get("manager_employee_number"))
                classes, entry = new_entry(
                    username,
                    attributes,
                    self.settings.flavour,
                    manager_dn=manager_dn,
                    upn_suffix=self.settings.principal_suffix,
                    tls=self.settings.tls,
                )
                dn = self._dn(username)
                controls = None
                if self.settings.flavour == "openldap":
                    controls = [post_read_control([self._id_attr])]
                if conn.add(dn, classes, entry, controls=controls):
                    self._dns.put(username, dn)
                    external_id = self._post_read_id(conn.result)
                    return external_id or self._external_id(self._get(conn, username))
                if conn.result.get("result") != _ALREADY_EXISTS:
                    self._raise(conn, f"creating {username}")
                existing = self._get(conn, username)  # created meanwhile (a retry, a race)
                if self._first(existing, "employeeNumber") == entry.get("employeeNumber"):
                    return self._external_id(existing)
            have = pasa_attributes(
                existing.values, self.settings.flavour, manager_employee_number=None
            )
            check_owner(username, have, attributes)
            update = {k: v for k, v in attributes.items() if k != PASSWORD}
            self._modify(conn, existing.dn, self._changes(conn, existing, update))
            return self._external_id(existing)

        return self._run(action)

    def _post_read_id(self, result: Mapping[str, Any] | None) -> str | None:
        """``entryUUID`` from the post-read control of an add, if the server answered it."""
        control = ((result or {}).get("controls") or {}).get(POST_READ_OID) or {}
        read = (control.get("value") or {}).get("result") or {}
        for attr, values in read.items():
            if attr.lower() == self._id_attr.lower():
                value = values[0] if isinstance(values, list | tuple) and values else values
                return str(value) if value else None
        return None

    def update(self, username: str, changes: Attributes) -> None:
        def action(conn: Any) -> None:
            entry = self._get(conn, username)
            self._modify(conn, entry.dn, self._changes(conn, entry, changes))

        self._run(action)

    def set_password(self, username: str, password: str) -> None:
        """OpenLDAP: replace ``userPassword`` with a salted SHA (``{SSHA}``) of the password,
        which slapd checks on bind. Active Directory ignores ``userPassword``: it needs
        ``unicodePwd`` (the quoted password in UTF-16-LE), and only over LDAPS or StartTLS —
        without TLS this raises :class:`PermanentError` rather than send it in clear.
        """
        if self.settings.flavour == "ad":
            values = password_values(password, "ad", tls=self.settings.tls)
        else:
            values = {"userPassword": hashed(HASHED_SALTED_SHA, password)}

        def action(conn: Any) -> None:
            entry = self._get(conn, username)
            changes = {attr: [(MODIFY_REPLACE, [value])] for attr, value in values.items()}
            self._modify(conn, entry.dn, changes)

        self._run(action)

    def rename(self, username: str, new_username: str) -> None:
        flavour = self.settings.flavour

        def action(conn: Any) -> None:
            old = self._find(conn, username)
            if username == new_username:
                if old is None:
                    raise NotFoundError(f"account '{username}' does not exist in {self.name}")
                return
            taken = self._find(conn, new_username)
            if taken is not None:
                if old is None:  # already renamed: finish moving memberships
                    self._move_memberships(conn, self._dn(username), taken.dn)
                    return
                raise ConflictError(f"username '{new_username}' already exists in {self.name}")
            if old is None:
                raise NotFoundError(f"account '{username}' does not exist in {self.name}")
            rdn = user_rdn(new_username, flavour)
            if not conn.modify_dn(old.dn, rdn, delete_old_dn=True):
                self._raise(conn, f"renaming {username} to {new_username}")
            parent = ",".join(f"{a}={v}" for a, v, _ in parse_dn(old.dn)[1:])
            new_dn = f"{rdn},{parent}"
            if flavour == "ad":
                principal = f"{new_username}@{self.settings.principal_suffix}"
                self._modify(
                    conn,
                    new_dn,
                    {
                        "sAMAccountName": [(MODIFY_REPLACE, [new_username])],
                        "userPrincipalName": [(MODIFY_REPLACE, [principal])],
                    },
                )
            self._move_memberships(conn, old.dn, new_dn)

        try:
            self._run(action)
        finally:
            self._dns.drop(username)
            self._dns.drop(new_username)

    def _set_enabled(self, username: str, enabled: bool) -> None:
        def action(conn: Any) -> None:
            entry = self._get(conn, username)
            if self._enabled(entry) == enabled:
                return
            if self.settings.flavour == "ad":
                uac = int(self._first(entry, "userAccountControl") or NORMAL_ACCOUNT)
                value = str(uac_set_disabled(uac, not enabled))
                self._modify(conn, entry.dn, {"userAccountControl": [(MODIFY_REPLACE, [value])]})
                return
            if enabled:
                markers = [
                    v
                    for v in self._all(entry, "employeeType")
                    if v.lower() == self.settings.disabled_marker.lower()
                ]
                change = [(MODIFY_DELETE, markers)]
            else:
                change = [(MODIFY_ADD, [self.settings.disabled_marker])]
            done = conn.modify(entry.dn, {"employeeType": change})
            if not done and conn.result.get("result") not in (_VALUE_EXISTS, _NO_SUCH_ATTRIBUTE):
                self._raise(conn, f"{'enabling' if enabled else 'disabling'} {username}")

        self._run(action)

    def enable(self, username: str) -> None:
        self._set_enabled(username, True)

    def disable(self, username: str) -> None:
        self._set_enabled(username, False)

    def delete(self, username: str) -> None:
        def action(conn: Any) -> None:
            entry = self._find(conn, username)
            if entry is None:
                return
            # Memberships first: a retry after a crash still finds the entry and finishes.
            for group in self._groups_with(conn, entry.dn):
                self._remove_from_group(conn, group.dn, entry.dn)
            if not conn.delete(entry.dn) and conn.result.get("result") != _NO_SUCH_OBJECT:
                self._raise(conn, f"deleting {username}")

        try:
            self._run(action)
        finally:
            self._dns.drop(username)

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        cn = group_name(kind, value)
        group_dn = self._group_dn(cn)

        def action(conn: Any) -> None:
            self._add_to_group(conn, group_dn, cn, self._account_dn(conn, username))

        self._run(action)

    def _add_to_group(self, conn: Any, group_dn: str, cn: str, dn: str) -> None:
        """One modify on the common path; see "Round trips" in the module docstring."""
        placeholder = self.settings.placeholder_dn
        key = _dn_key(group_dn)
        add = (MODIFY_ADD, [dn])
        # A group not known clean may still hold the placeholder: delete it in the same modify
        # (which fails with noSuchAttribute, changing nothing, when it is not there).
        may_hold = self.settings.flavour == "openldap" and not self._clean_groups.get(key)
        code = _NO_SUCH_ATTRIBUTE
        if may_hold:
            if conn.modify(group_dn, {"member": [add, (MODIFY_DELETE, [placeholder])]}):
                self._clean_groups.put(key, True)
                return
            code = conn.result.get("result")
            # Modifications are checked in order: noSuchAttribute means the add met no such
            # member and the delete no placeholder (nothing was changed).
            may_hold = code != _NO_SUCH_ATTRIBUTE
        if code == _NO_SUCH_ATTRIBUTE:  # no placeholder: add the member alone
            if conn.modify(group_dn, {"member": [add]}):
                self._clean_groups.put(key, True)
                return
            code = conn.result.get("result")
        if code == _VALUE_EXISTS:  # a member already: done (a placeholder beside it goes)
            if may_hold:
                self._remove_from_group(conn, group_dn, placeholder)
            self._clean_groups.put(key, True)
            return
        if code == _NO_SUCH_OBJECT:
            if conn.add(group_dn, ["top", self._group_class], {"cn": cn, "member": [dn]}):
                self._clean_groups.put(key, True)
                return
            if conn.result.get("result") != _ALREADY_EXISTS:
                self._raise(conn, f"creating group {cn}")
            # Created meanwhile by someone else: add to it.
            if conn.modify(group_dn, {"member": [add]}):
                return
            if conn.result.get("result") == _VALUE_EXISTS:
                return
        self._raise(conn, f"adding {dn} to group {cn}")

    def remove_member(self, username: str, kind: str, value: str) -> None:
        group_dn = self._group_dn(group_name(kind, value))

        def action(conn: Any) -> None:
            dn = self._dns.get(username)
            if dn is None:
                entry = self._find(conn, username)
                if entry is None:
                    return
                dn = entry.dn
            self._remove_from_group(conn, group_dn, dn)

        self._run(action)

    def read(self, username: str) -> RemoteAccount | None:
        def action(conn: Any) -> RemoteAccount | None:
            entry = self._find(conn, username)
            if entry is None:
                return None
            memberships = self._memberships(self._groups_with(conn, entry.dn))
            return self._remote(conn, entry, memberships, {})

        return self._run(action)

    def _paged(self, base: str, filt: str, attrs: list[str]) -> Iterator[_Entry]:
        """Every entry of a search, fetched with the simple paged results control."""
        cookie: bytes | None = None
        first = True
        while first or cookie:

            def page(conn: Any, cookie: bytes | None = cookie) -> tuple[list[_Entry], Any]:
                ok = conn.search(
                    base,
                    filt,
                    search_scope=SUBTREE,
                    attributes=attrs,
                    paged_size=self.settings.page_size,
                    paged_cookie=cookie,
                )
                if not ok and conn.result.get("result") != _SUCCESS:
                    self._raise(conn, f"paged search under {base}")
                entries = [
                    self._entry(i) for i in conn.response if i.get("type") == "searchResEntry"
                ]
                control = (conn.result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
                return entries, (control.get("value") or {}).get("cookie")

            # A cookie belongs to its connection: only the first page may re-bind and retry.
            entries, cookie = self._run(page, retry=first)
            first = False
            yield from entries

    def list(self) -> Iterator[RemoteAccount]:
        groups: dict[str, set[Membership]] = {}
        for group in self._paged(
            self.settings.groups_dn, f"(objectClass={self._group_class})", ["cn", "member"]
        ):
            cn = self._first(group, "cn")
            if cn is None:
                continue
            for member in self._all(group, "member"):
                groups.setdefault(member.lower(), set()).add(membership_of_group(cn))
        cache: dict[str, str | None] = {}
        for entry in self._paged(self.settings.users_dn, self._user_filter(), self._read_attrs):
            memberships = frozenset(groups.get(entry.dn.lower(), set()))
            yield self._run(self._remote_action(entry, memberships, cache))

    def _remote_action(
        self, entry: _Entry, memberships: frozenset[Membership], cache: dict[str, str | None]
    ) -> Callable[[Any], RemoteAccount]:
        return lambda conn: self._remote(conn, entry, memberships, cache)


def build_ldap(target_key: str, settings: Mapping[str, Any]) -> Connector:
    """Registry factory for ``connector: ldap``."""
    allowed = {f for f in LdapSettings.__dataclass_fields__}
    reject_unknown_settings(target_key, settings, allowed)
    missing = [k for k in ("url", "bind_dn", "bind_password_env", "base_dn") if not settings.get(k)]
    if missing:
        raise ConfigurationError(
            f"target '{target_key}' (ldap) needs setting(s) {', '.join(missing)}"
        )
    env = str(settings["bind_password_env"])
    if env not in os.environ:
        raise ConfigurationError(
            f"target '{target_key}' reads its LDAP bind password from environment variable "
            f"{env}, which is not set"
        )
    try:
        ldap_settings = LdapSettings(
            url=str(settings["url"]),
            bind_dn=str(settings["bind_dn"]),
            bind_password_env=env,
            base_dn=str(settings["base_dn"]),
            users_ou=str(settings.get("users_ou", "ou=people")),
            groups_ou=str(settings.get("groups_ou", "ou=groups")),
            flavour=settings.get("flavour", "openldap"),
            use_tls=bool(settings.get("use_tls", False)),
            timeout=float(settings.get("timeout", 10.0)),
            page_size=int(settings.get("page_size", 500)),
            upn_suffix=settings.get("upn_suffix"),
            disabled_marker=str(settings.get("disabled_marker", "pasa-disabled")),
            cache_size=int(settings.get("cache_size", 10_000)),
            cache_seconds=float(settings.get("cache_seconds", 300.0)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"target '{target_key}' (ldap): {exc}") from exc
    return LdapConnector(ldap_settings, name=target_key)
