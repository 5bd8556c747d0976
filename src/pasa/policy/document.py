"""The access policy document: targets, roles, rules and birthright, read from YAML.

The document is validated completely when it is loaded — field names, attribute names in
predicates, operators, value types, username templates and every cross-reference (a role's
target, a rule's roles, birthright targets). Any problem becomes one
``ConfigurationError`` sentence that names the file and the place, e.g.
``examples/policy.yaml: rules[3] 'nurses': when.all[1]: unknown attribute 'staf_group' (...)``.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import AccountAttributes, EntitlementKind
from pasa.policy.predicates import Predicate, PredicateError, dump_predicate, parse_predicate

KEY_PATTERN: Final[str] = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
USERNAME_FIELDS: Final[tuple[str, ...]] = (
    "first_name",
    "last_name",
    "first_initial",
    "known_as",
    "employee_number",
)
ACCOUNT_ATTRIBUTES: Final[tuple[str, ...]] = tuple(AccountAttributes.__dataclass_fields__)
_SECRET_WORDS: Final[tuple[str, ...]] = ("password", "secret", "token", "private_key", "apikey")


def _validate_predicate(raw: Any) -> Predicate:
    try:
        return parse_predicate(raw, "when")
    except PredicateError as exc:
        raise ValueError(str(exc)) from None


PredicateField = Annotated[
    Predicate,
    PlainValidator(_validate_predicate),
    PlainSerializer(dump_predicate, return_type=dict),
    WithJsonSchema({"type": "object", "description": "predicate (all/any/not/attribute)"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetLifecycle(_Strict):
    """When, relative to HR dates, a target's accounts and access change.

    * ``prehire_days``: create the account this many days before the start date, *disabled*,
      with its groups and application roles, and enable it on the start date (0: on the day).
    * ``mover_overlap_days``: after a move, keep access the old post alone justified for this
      many days (handover), unless the person has left altogether.
    * ``retention_days``: delete a disabled account this many days after it was disabled
      (``null``: keep disabled accounts for ever).
    * ``dated_access``: the target stores validity dates on door zones, so pre-hire door
      access is sent early with ``valid_from`` = start date; otherwise door zones are only
      added on the start date.
    * ``rename_on_name_change``: a change of name renames the account (never a new one).
    * ``credential_handover``: new accounts get a one-time activation code the line manager
      reveals on day one.
    """

    prehire_days: Annotated[int, Field(ge=0, le=90)] = 0
    mover_overlap_days: Annotated[int, Field(ge=0, le=90)] = 0
    retention_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    dated_access: bool = False
    rename_on_name_change: bool = False
    credential_handover: bool = False


class TargetSpec(_Strict):
    """A system PASA provisions into, and how account names are made there.

    ``settings`` are non-secret connector settings; secrets are referenced by the name of an
    environment variable (``password_env: AD_BIND_PASSWORD``), never written in the policy.
    """

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    name: str
    connector: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    username_template: str = "{first_initial}{last_name}"
    username_max_length: Annotated[int, Field(ge=4, le=256)] = 20
    settings: dict[str, Any] = Field(default_factory=dict)
    attributes: tuple[str, ...] | None = None
    lifecycle: TargetLifecycle = Field(default_factory=TargetLifecycle)

    @field_validator("username_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"username_template {value!r} is malformed ({exc})") from None
        if not fields:
            raise ValueError(
                f"username_template {value!r} uses no placeholder "
                f"(known: {', '.join('{' + f + '}' for f in USERNAME_FIELDS)})"
            )
        for name in fields:
            if name not in USERNAME_FIELDS:
                raise ValueError(
                    f"username_template uses unknown placeholder {{{name}}} "
                    f"(known: {', '.join('{' + f + '}' for f in USERNAME_FIELDS)})"
                )
        return value

    @field_validator("settings")
    @classmethod
    def _check_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, setting in value.items():
            lowered = str(name).lower()
            if lowered.endswith("_env"):
                continue
            if any(word in lowered for word in _SECRET_WORDS) and setting not in (None, ""):
                raise ValueError(
                    f"settings.{name} looks like a secret; name an environment variable "
                    f"instead ({name}_env: SOME_VARIABLE)"
                )
        return value

    @field_validator("attributes")
    @classmethod
    def _check_attributes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        for name in value:
            if name not in ACCOUNT_ATTRIBUTES:
                raise ValueError(
                    f"unknown account attribute {name!r} (known: {', '.join(ACCOUNT_ATTRIBUTES)})"
                )
        return value

    def kept_attributes(self) -> tuple[str, ...]:
        """The account attributes this target keeps (all of them unless listed)."""
        return self.attributes if self.attributes is not None else ACCOUNT_ATTRIBUTES


class EntitlementSpec(_Strict):
    """What a role gives on one target: the account, plus groups, app roles, door zones."""

    target: str
    groups: tuple[str, ...] = ()
    app_roles: tuple[str, ...] = ()
    door_zones: tuple[str, ...] = ()

    def items(self) -> tuple[tuple[EntitlementKind, str], ...]:
        return (
            tuple((EntitlementKind.GROUP, g) for g in self.groups)
            + tuple((EntitlementKind.APP_ROLE, r) for r in self.app_roles)
            + tuple((EntitlementKind.DOOR_ZONE, z) for z in self.door_zones)
        )


class RoleSpec(_Strict):
    """A named bundle of entitlements across targets (e.g. ``nurse``)."""

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    description: str = ""
    entitlements: tuple[EntitlementSpec, ...] = ()


class RuleSpec(_Strict):
    """When an active assignment matches ``when``, the person is granted the ``grant`` roles."""

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    description: str = ""
    when: PredicateField
    grant: Annotated[tuple[str, ...], Field(min_length=1)]


Approver = Literal["line_manager", "system_owner"]


class RequestableSpec(_Strict):
    """One item of the catalogue of access a person may be asked for (issue 6): an account
    on ``target`` (no ``kind``) or one group / app role / door zone there, with the approval
    stages it needs, in order, and how long each stage may wait (``sla_hours``)."""

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    target: str
    kind: EntitlementKind | None = None
    value: str = ""
    description: str = ""
    approvers: Annotated[tuple[Approver, ...], Field(min_length=1)] = ("line_manager",)
    # End date required and at most this many days after the start; unset: optional.
    max_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    sla_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 72

    def problem(self) -> str | None:
        """What is wrong with the item on its own (the document names where)."""
        if self.kind is not None and not self.value.strip():
            return f"a {self.kind.value} item needs the {self.kind.value} in 'value'"
        if self.kind is None and self.value:
            return "an account item (no 'kind') takes no 'value'"
        if len(set(self.approvers)) != len(self.approvers):
            return f"approvers repeat a stage: {', '.join(self.approvers)}"
        return None

    def describe(self) -> str:
        what = "account" if self.kind is None else f"{self.kind.value.replace('_', ' ')}"
        return f"{what} {self.value} on {self.target}" if self.value else f"{what} on {self.target}"


def _unique(kind: str, keys: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise ValueError(f"{kind}[{i}] {key!r}: duplicate key (also {kind}[{seen[key]}])")
        seen[key] = i


class PolicyDocument(_Strict):
    """The whole policy: ``version``, ``targets``, ``roles``, ``rules``, ``birthright``."""

    version: Literal[1]
    targets: tuple[TargetSpec, ...]
    roles: tuple[RoleSpec, ...] = ()
    rules: tuple[RuleSpec, ...] = ()
    birthright: tuple[str, ...] = ()
    # The catalogue of requestable access (issue 6).
    requestable: tuple[RequestableSpec, ...] = ()

    @model_validator(mode="after")
    def _check_references(self) -> PolicyDocument:
        _unique("targets", [t.key for t in self.targets])
        _unique("roles", [r.key for r in self.roles])
        _unique("rules", [r.key for r in self.rules])
        targets = [t.key for t in self.targets]
        roles = [r.key for r in self.roles]
        for i, role in enumerate(self.roles):
            for j, ent in enumerate(role.entitlements):
                if ent.target not in targets:
                    raise ValueError(
                        f"roles[{i}] {role.key!r}: entitlements[{j}] names unknown target "
                        f"{ent.target!r} (known: {', '.join(targets)})"
                    )
        for i, rule in enumerate(self.rules):
            for name in rule.grant:
                if name not in roles:
                    raise ValueError(
                        f"rules[{i}] {rule.key!r}: grants unknown role {name!r} "
                        f"(known: {', '.join(roles) or 'none'})"
                    )
        for i, name in enumerate(self.birthright):
            if name not in targets:
                raise ValueError(
                    f"birthright[{i}]: unknown target {name!r} (known: {', '.join(targets)})"
                )
        _unique("requestable", [r.key for r in self.requestable])
        for i, item in enumerate(self.requestable):
            problem = item.problem()
            if problem is not None:
                raise ValueError(f"requestable[{i}] {item.key!r}: {problem}")
            if item.target not in targets:
                raise ValueError(
                    f"requestable[{i}] {item.key!r}: unknown target {item.target!r} "
                    f"(known: {', '.join(targets)})"
                )
        return self

    def requestable_item(self, key: str) -> RequestableSpec:
        for item in self.requestable:
            if item.key == key:
                return item
        raise KeyError(key)

    def target(self, key: str) -> TargetSpec:
        for t in self.targets:
            if t.key == key:
                return t
        raise KeyError(key)


# --------------------------------------------------------------------------------------------
# Loading


def _label(data: Any, loc: tuple[int | str, ...]) -> str:
    """``rules[3] 'nurses': when`` for a pydantic error location over the raw document."""
    segments: list[str] = []
    current = ""
    node = data
    for item in loc:
        if isinstance(item, int):
            current += f"[{item}]"
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("key"), str):
                segments.append(f"{current} {node['key']!r}")
                current = ""
        else:
            current = f"{current}.{item}" if current else str(item)
            node = node.get(item) if isinstance(node, dict) else None
    if current:
        segments.append(current)
    return ": ".join(segments)


def _describe_error(data: Any, error: Any) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    kind = error["type"]
    msg = str(error["msg"])
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    if kind == "extra_forbidden":
        owner_loc, name = loc[:-1], loc[-1]
        return f"{_prefix(data, owner_loc)}unknown field {name!r}{_known_fields(data, owner_loc)}"
    if kind == "missing":
        return f"{_prefix(data, loc[:-1])}missing required field {loc[-1]!r}"
    if kind == "literal_error" and loc == ("version",):
        return f"version must be 1, not {error.get('input')!r}"
    if kind == "value_error" and msg.startswith("when"):
        return f"{_prefix(data, loc[:-1])}{msg}"
    if kind == "value_error" and not loc:
        return msg
    if kind == "string_pattern_mismatch":
        return (
            f"{_prefix(data, loc)}{error.get('input')!r} is not a valid key "
            "(letters, digits, '_', '.', '-')"
        )
    if kind == "value_error":
        return f"{_prefix(data, loc[:-1])}{msg}"
    return f"{_prefix(data, loc)}{msg[0].lower() + msg[1:]}"


def _prefix(data: Any, loc: tuple[int | str, ...]) -> str:
    if not loc:
        return ""
    return _label(data, loc) + ": "


_FIELDS_BY_SECTION: Final[dict[str, tuple[str, ...]]] = {
    "": tuple(PolicyDocument.model_fields),
    "targets": tuple(TargetSpec.model_fields),
    "lifecycle": tuple(TargetLifecycle.model_fields),
    "roles": tuple(RoleSpec.model_fields),
    "rules": tuple(RuleSpec.model_fields),
    "entitlements": tuple(EntitlementSpec.model_fields),
    "requestable": tuple(RequestableSpec.model_fields),
}


def _known_fields(data: Any, owner_loc: tuple[int | str, ...]) -> str:
    names = [str(p) for p in owner_loc if isinstance(p, str)]
    section = names[-1] if names else ""
    fields = _FIELDS_BY_SECTION.get(section)
    return f" (known: {', '.join(fields)})" if fields else ""


def _validate(data: Any, source: str) -> PolicyDocument:
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{source}: a policy is a mapping with version, targets, roles, rules and birthright"
        )
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = len(errors) - 1
        tail = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
        raise ConfigurationError(f"{source}: {_describe_error(data, errors[0])}{tail}") from None


def parse_policy(text: str, source: str) -> PolicyDocument:
    """Parse and validate a YAML policy; ``source`` names it in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigurationError(f"{source}: not valid YAML{where}: {problem}") from None
    return _validate(data, source)


def load_policy_file(path: str | Path) -> PolicyDocument:
    """Read and validate a policy file (the only I/O in the policy package)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{p}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{p}: cannot read the policy file ({exc})") from None
    return parse_policy(text, str(p))
