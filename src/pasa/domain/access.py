"""Who may do what inside PASA (pure): roles, principals and one authorization decision.

Every API endpoint, page and SCIM call asks :func:`decide` with the principal signed in (a
person with role bindings, or an API token with scopes), an :class:`Action` and the
:class:`Resource` it touches. The answer says whether it is allowed and, when it is not,
whether the resource may even be acknowledged: something in another organisation, or a
person who is not one's report, is answered as *not found* (404) so that neither its
existence nor its identifiers leak; something visible but beyond one's role is *forbidden*
(403).

Roles are held per organisation (ODS code). ``platform_admin`` holds for every organisation.
``system_owner`` is also scoped to one target (the system they own). ``line_manager`` and
``staff`` are not granted: they follow from HR — anyone linked to a person is staff (for
themselves), and anyone whose assignments are the line manager of current assignments is a
line manager of those people, on the day (:attr:`Principal.reports`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    ORG_ADMIN = "org_admin"  # the organisation's identity team
    SYSTEM_OWNER = "system_owner"  # owner / information asset owner of one target
    LINE_MANAGER = "line_manager"  # derived from HR: their current reports
    STAFF = "staff"  # derived from HR: themselves
    AUDITOR = "auditor"  # reads everything in the organisation, changes nothing


# Roles an administrator grants; the other two follow from HR records.
GRANTED_ROLES: frozenset[Role] = frozenset(
    {Role.PLATFORM_ADMIN, Role.ORG_ADMIN, Role.SYSTEM_OWNER, Role.AUDITOR}
)


class Action(StrEnum):
    READ_PEOPLE = "people.read"  # people, assignments, positions, organisations
    READ_ACCESS = "access.read"  # a person's accounts, grants, readiness, explanations
    REQUEST_ACCESS = "access.request"
    APPROVE_ACCESS = "access.approve"
    REVEAL_HANDOVER = "handover.reveal"  # day-one activation code of a new starter
    READ_POLICY = "policy.read"
    MANAGE_POLICY = "policy.manage"
    READ_TARGETS = "targets.read"
    MANAGE_TARGETS = "targets.manage"  # pause, resume, reconcile
    READ_OPERATIONS = "operations.read"  # operations, manual tasks, reconciliation findings
    OPERATE = "operations.manage"  # retry / cancel operations, complete manual tasks
    IMPORT_HR = "hr.import"  # file imports and HR push
    APPROVE_HR = "hr.approve"  # guard approvals, quarantine
    MANAGE_ROTATIONS = "rotations.manage"
    READ_AUDIT = "audit.read"
    MANAGE_TOKENS = "tokens.manage"  # API tokens and role bindings of the organisation
    SCIM_READ = "scim.read"
    SCIM_WRITE = "scim.write"


READS: frozenset[Action] = frozenset(
    {
        Action.READ_PEOPLE,
        Action.READ_ACCESS,
        Action.READ_POLICY,
        Action.READ_TARGETS,
        Action.READ_OPERATIONS,
        Action.READ_AUDIT,
    }
)

# What each role may do within its scope (organisation; target; reports; self).
ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.PLATFORM_ADMIN: frozenset(Action),
    Role.ORG_ADMIN: frozenset(Action),
    Role.AUDITOR: READS,
    Role.SYSTEM_OWNER: frozenset(
        {
            Action.READ_ACCESS,
            Action.APPROVE_ACCESS,
            Action.READ_TARGETS,
            Action.READ_OPERATIONS,
            Action.OPERATE,
        }
    ),
    Role.LINE_MANAGER: frozenset(
        {
            Action.READ_PEOPLE,
            Action.READ_ACCESS,
            Action.REQUEST_ACCESS,
            Action.APPROVE_ACCESS,
            Action.REVEAL_HANDOVER,
        }
    ),
    Role.STAFF: frozenset({Action.READ_PEOPLE, Action.READ_ACCESS, Action.REQUEST_ACCESS}),
}


class Scope(StrEnum):
    """What an API token may do (a token also belongs to one organisation)."""

    SCIM = "scim"  # the SCIM service provider: read and write the organisation's identities
    API_READ = "api:read"
    API_WRITE = "api:write"
    HR_PUSH = "hr:push"  # HR records by API (JSON, SCIM bulk)


SCOPE_ACTIONS: Mapping[Scope, frozenset[Action]] = {
    Scope.SCIM: frozenset({Action.SCIM_READ, Action.SCIM_WRITE}),
    Scope.API_READ: READS - {Action.READ_AUDIT},
    Scope.API_WRITE: frozenset(
        {
            Action.REQUEST_ACCESS,
            Action.MANAGE_POLICY,
            Action.MANAGE_TARGETS,
            Action.OPERATE,
            Action.MANAGE_ROTATIONS,
        }
    ),
    Scope.HR_PUSH: frozenset({Action.IMPORT_HR}),
}


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from text; an unknown one is a :class:`ValueError` naming the known ones."""
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip()))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope '{value}' (scopes: {known})") from None
    if not scopes:
        raise ValueError("a token needs at least one scope")
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class Binding:
    """A granted role: in one organisation (``None``: every one) and, for a system owner,
    over one target."""

    role: Role
    organisation: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in person or an API token."""

    subject: str  # OIDC subject, or ``token:<id>``
    display_name: str = ""
    person_id: int | None = None  # the person this user is, when linked to HR
    # Organisations the linked person currently works in (staff of those).
    person_organisations: frozenset[str] = frozenset()
    bindings: frozenset[Binding] = frozenset()
    # Current reports (person id → organisations of the managed assignments).
    reports: Mapping[int, frozenset[str]] = field(default_factory=dict)
    # API tokens only: what the token may do, for its one organisation.
    scopes: frozenset[Scope] | None = None
    token_organisation: str | None = None

    @property
    def is_token(self) -> bool:
        return self.scopes is not None

    def roles(self) -> frozenset[Role]:
        found = {b.role for b in self.bindings}
        if self.person_id is not None:
            found.add(Role.STAFF)
        if self.reports:
            found.add(Role.LINE_MANAGER)
        return frozenset(found)

    def organisations(self) -> frozenset[str] | None:
        """Organisations this principal may see anything of (``None``: all of them)."""
        if self.is_token:
            return frozenset({self.token_organisation}) if self.token_organisation else frozenset()
        if any(b.role is Role.PLATFORM_ADMIN for b in self.bindings):
            return None
        orgs = {b.organisation for b in self.bindings if b.organisation is not None}
        orgs |= self.person_organisations
        for report_orgs in self.reports.values():
            orgs |= report_orgs
        return frozenset(orgs)


@dataclass(frozen=True, slots=True)
class Resource:
    """What an action touches. Empty fields mean "the collection" (e.g. list people)."""

    organisations: frozenset[str] = frozenset()  # the ODS codes it belongs to
    person_id: int | None = None
    target: str | None = None

    @classmethod
    def of(
        cls, organisation: str | Iterable[str] | None = None, **kwargs: int | str | None
    ) -> Resource:
        if organisation is None:
            orgs: frozenset[str] = frozenset()
        elif isinstance(organisation, str):
            orgs = frozenset({organisation})
        else:
            orgs = frozenset(organisation)
        person = kwargs.get("person_id")
        target = kwargs.get("target")
        return cls(
            orgs,
            person if isinstance(person, int) else None,
            target if isinstance(target, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    # When refused: may the resource be acknowledged (403) or must it look absent (404)?
    visible: bool = True

    @property
    def status(self) -> int:
        return 200 if self.allowed else (403 if self.visible else 404)

    def __bool__(self) -> bool:
        return self.allowed


def _in_org(binding: Binding, resource: Resource) -> bool:
    if binding.organisation is None:
        return True
    # A collection (no organisation named) is filtered to the principal's organisations.
    return not resource.organisations or binding.organisation in resource.organisations


def _binding_allows(binding: Binding, action: Action, resource: Resource) -> bool:
    if action not in ROLE_ACTIONS[binding.role] or not _in_org(binding, resource):
        return False
    if binding.role is Role.SYSTEM_OWNER:
        # Only about their own system: an operation, an account, an approval on it.
        return resource.target is not None and resource.target == binding.target
    return True


def decide(principal: Principal, action: Action, resource: Resource = Resource()) -> Decision:
    """May ``principal`` do ``action`` on ``resource``? With the reason, for the audit."""
    visible_orgs = principal.organisations()
    outside = (
        visible_orgs is not None
        and bool(resource.organisations)
        and not (resource.organisations & visible_orgs)
    )
    if principal.is_token:
        assert principal.scopes is not None
        if outside:
            return Decision(False, "outside the token's organisation", visible=False)
        for scope in sorted(principal.scopes):
            if action in SCOPE_ACTIONS[scope]:
                return Decision(True, f"token scope {scope.value}")
        return Decision(False, f"the token has no scope for {action.value}")
    if outside:
        return Decision(False, "outside the user's organisations", visible=False)

    for binding in sorted(principal.bindings, key=lambda b: (b.role, b.organisation or "")):
        if _binding_allows(binding, action, resource):
            where = binding.organisation or "every organisation"
            over = f", target {binding.target}" if binding.target else ""
            return Decision(True, f"{binding.role.value} of {where}{over}")

    person = resource.person_id
    if person is not None:
        if person == principal.person_id and action in ROLE_ACTIONS[Role.STAFF]:
            return Decision(True, "their own record")
        if person in principal.reports and action in ROLE_ACTIONS[Role.LINE_MANAGER]:
            return Decision(True, "line manager of this person")
    elif (
        # A collection: staff and line managers may list (their own people, filtered).
        resource.target is None
        and not resource.organisations
        and (principal.person_id is not None or principal.reports)
        and action in (Action.READ_PEOPLE, Action.READ_ACCESS)
    ):
        return Decision(True, "own people (listing filtered)")

    people_visible = (
        principal.person_id is not None and person == principal.person_id
    ) or person in principal.reports
    any_role_in_org = bool(principal.bindings)
    if person is not None and not people_visible and not any_role_in_org:
        return Decision(False, "not one of this user's people", visible=False)
    return Decision(False, f"no role of this user allows {action.value}")
