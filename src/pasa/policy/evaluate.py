"""Policy evaluation: people + compiled policy + a date -> desired accounts and grants.

Pure: no I/O. Each active assignment of each person is matched against the rules; matched
rules give roles, roles give entitlements. Access is the union over a person's assignments,
and every desired account and grant carries *all* the reasons that justify it, so removing
one assignment removes only what that assignment alone justified.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pasa.domain.grants import (
    AccountAttributes,
    DesiredAccount,
    DesiredGrant,
    DesiredState,
    EntitlementKind,
    Reason,
)
from pasa.domain.model import Assignment, AssignmentStatus, PersonView
from pasa.policy.document import PolicyDocument, TargetSpec
from pasa.policy.predicates import (
    ATTRIBUTES,
    Matcher,
    Predicate,
    Value,
    compile_predicate,
    index_key,
)

Entitlement = tuple[str, EntitlementKind | None, str]
"""(target, kind, value); kind ``None`` means "an account on target" and nothing more."""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    key: str
    description: str
    predicate: Predicate
    matches: Matcher
    roles: tuple[str, ...]
    order: int


@dataclass(frozen=True, slots=True)
class _RuleIndex:
    """Rules bucketed by a value they require, so most rules are never tried."""

    always: tuple[CompiledRule, ...]
    by_attribute: tuple[
        tuple[Callable[[Assignment], Value], Mapping[Value, tuple[CompiledRule, ...]]], ...
    ]

    def candidates(self, assignment: Assignment) -> list[CompiledRule]:
        found = list(self.always)
        for get, buckets in self.by_attribute:
            found.extend(buckets.get(get(assignment), ()))
        found.sort(key=lambda r: r.order)
        return found


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A validated policy turned into closures and look-up tables, ready to evaluate."""

    document: PolicyDocument
    targets: Mapping[str, TargetSpec]
    rules: tuple[CompiledRule, ...]
    role_entitlements: Mapping[str, tuple[Entitlement, ...]]
    birthright: tuple[str, ...]
    _index: _RuleIndex = field(repr=False)

    def matching_rules(self, assignment: Assignment) -> list[CompiledRule]:
        """The rules whose predicate holds for ``assignment``, in policy order."""
        return [r for r in self._index.candidates(assignment) if r.matches(assignment)]

    def rule_targets(self, rule: CompiledRule) -> frozenset[str]:
        return frozenset(t for role in rule.roles for t, _, _ in self.role_entitlements[role])


def compile_policy(doc: PolicyDocument) -> CompiledPolicy:
    """Precompile predicates and index rules by a value each one requires."""
    rules = tuple(
        CompiledRule(r.key, r.description, r.when, compile_predicate(r.when), r.grant, i)
        for i, r in enumerate(doc.rules)
    )
    role_entitlements: dict[str, tuple[Entitlement, ...]] = {}
    for role in doc.roles:
        items: list[Entitlement] = []
        for ent in role.entitlements:
            items.append((ent.target, None, ""))
            items.extend((ent.target, kind, value) for kind, value in ent.items())
        role_entitlements[role.key] = tuple(dict.fromkeys(items))

    always: list[CompiledRule] = []
    buckets: dict[str, dict[Value, list[CompiledRule]]] = {}
    for rule in rules:
        key = index_key(rule.predicate)
        if key is None:
            always.append(rule)
            continue
        attribute, values = key
        for value in values:
            buckets.setdefault(attribute, {}).setdefault(value, []).append(rule)
    index = _RuleIndex(
        always=tuple(always),
        by_attribute=tuple(
            (ATTRIBUTES[name].getter, {v: tuple(rs) for v, rs in by_value.items()})
            for name, by_value in buckets.items()
        ),
    )
    return CompiledPolicy(
        document=doc,
        targets={t.key: t for t in doc.targets},
        rules=rules,
        role_entitlements=role_entitlements,
        birthright=doc.birthright,
        _index=index,
    )


def granting_assignments(person: PersonView, at: dt.date) -> tuple[Assignment, ...]:
    """Assignments that confer access on ``at``: active, and not suspended."""
    return tuple(
        a
        for a in person.assignments
        if a.is_active_on(at) and a.status != AssignmentStatus.SUSPENDED
    )


ManagerIndex = Mapping[tuple[str, str], str]
"""(organisation, assignment number) -> employee number of whoever holds that assignment."""


def manager_index(people: Iterable[PersonView]) -> dict[tuple[str, str], str]:
    return {
        (a.organisation, a.assignment_number): a.employee_number
        for p in people
        for a in p.assignments
    }


def account_attributes(
    person: PersonView, at: dt.date, managers: ManagerIndex
) -> AccountAttributes | None:
    """Account attributes from the person's primary active assignment (None if none)."""
    primary = person.primary_assignment(at)
    if primary is None:
        return None
    manager = None
    if primary.supervisor_assignment_number:
        manager = managers.get((primary.organisation, primary.supervisor_assignment_number))
    return AccountAttributes(
        first_name=person.first_name,
        last_name=person.last_name,
        display_name=person.display_name,
        email=person.email,
        employee_number=primary.employee_number,
        organisation=primary.organisation,
        department=primary.position.department_name,
        job_title=primary.position.title,
        manager_employee_number=manager,
    )


@dataclass(slots=True)
class PersonAccess:
    """One person's desired access with reasons, before it is flattened into DesiredState."""

    accounts: dict[str, dict[Reason, None]] = field(default_factory=dict)
    grants: dict[tuple[str, EntitlementKind, str], dict[Reason, None]] = field(default_factory=dict)


def person_access(person: PersonView, policy: CompiledPolicy, at: dt.date) -> PersonAccess:
    """Every account and grant ``person`` should hold on ``at``, each with all its reasons."""
    access = PersonAccess()
    accounts = access.accounts
    grants = access.grants
    role_entitlements = policy.role_entitlements
    for assignment in granting_assignments(person, at):
        org = assignment.organisation
        number = assignment.assignment_number
        if policy.birthright:
            reason = Reason("birthright", None, None, org, number)
            for target in policy.birthright:
                accounts.setdefault(target, {})[reason] = None
        for rule in policy.matching_rules(assignment):
            for role in rule.roles:
                reason = Reason("rule", rule.key, role, org, number)
                for target, kind, value in role_entitlements[role]:
                    if kind is None:
                        accounts.setdefault(target, {})[reason] = None
                    else:
                        grants.setdefault((target, kind, value), {})[reason] = None
    return access


def evaluate(people: Iterable[PersonView], policy: CompiledPolicy, at: dt.date) -> DesiredState:
    """What every person in ``people`` should hold on ``at``.

    ``evaluated_person_ids`` lists everyone passed in — including leavers with nothing
    desired — so the planner knows whose recorded access to revoke.
    """
    people = list(people)
    managers = manager_index(people)
    accounts: list[DesiredAccount] = []
    grants: list[DesiredGrant] = []
    for person in sorted(people, key=lambda p: p.person_id):
        access = person_access(person, policy, at)
        if not access.accounts:
            continue
        attributes = account_attributes(person, at, managers)
        if attributes is None:  # pragma: no cover - accounts imply an active assignment
            continue
        pid = person.person_id
        for target in sorted(access.accounts):
            accounts.append(
                DesiredAccount(pid, target, attributes, tuple(sorted(access.accounts[target])))
            )
        for (target, kind, value), reasons in sorted(access.grants.items()):
            grants.append(DesiredGrant(pid, target, kind, value, tuple(sorted(reasons))))
    return DesiredState(
        at=at,
        accounts=tuple(accounts),
        grants=tuple(grants),
        evaluated_person_ids=frozenset(p.person_id for p in people),
    )
