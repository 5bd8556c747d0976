"""Policy evaluation: people + compiled policy + a date -> desired accounts and grants.

Pure: no I/O. Each active assignment of each person is matched against the rules; matched
rules give roles, roles give entitlements. Access is the union over a person's assignments,
and every desired account and grant carries *all* the reasons that justify it, so removing
one assignment removes only what that assignment alone justified.

The lifecycle windows of each target (``TargetSpec.lifecycle``) widen this, all as at the
same date:

* **pre-hire**: an assignment starting within ``prehire_days`` justifies a *disabled*
  account with its groups and application roles (door zones only on ``dated_access``
  targets, valid from the start date) — unless the person already uses that account;
* **suspended**: a suspended assignment keeps the account (disabled) and its groups and
  roles, but no door zones;
* **handover**: while a person is still employed, access that an ended assignment or a
  mover's superseded post alone justified is kept for ``mover_overlap_days``;
* **requests**: approved time-bound grants, while the person is employed.
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
    TimeBoundGrant,
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


def suspended_assignments(person: PersonView, at: dt.date) -> tuple[Assignment, ...]:
    return tuple(
        a
        for a in person.assignments
        if a.is_active_on(at) and a.status == AssignmentStatus.SUSPENDED
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
    """Account attributes from the person's defining assignment (primary active one, else
    the next to start, else the last to end); None for a person with no assignment."""
    primary = person.defining_assignment(at)
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


GrantKey = tuple[str, EntitlementKind, str]
Validity = tuple[dt.date | None, dt.date | None]


@dataclass(slots=True)
class PersonAccess:
    """One person's desired access with reasons, before it is flattened into DesiredState.

    ``enabled`` lists the targets where some reason lets the person *use* the account (an
    active assignment, a handover window, a request); accounts only a pre-hire window or a
    suspension justifies are held disabled. ``validity`` holds, per grant, the (from, to)
    window each reason gives, for targets that store validity dates.
    """

    accounts: dict[str, dict[Reason, None]] = field(default_factory=dict)
    grants: dict[GrantKey, dict[Reason, None]] = field(default_factory=dict)
    enabled: set[str] = field(default_factory=set)
    validity: dict[GrantKey, list[Validity]] = field(default_factory=dict)

    def grant_validity(self, key: GrantKey) -> Validity:
        """The union of the reasons' windows: earliest start, latest end (None = open)."""
        windows = self.validity.get(key)
        if not windows:
            return (None, None)
        starts = [w[0] for w in windows]
        ends = [w[1] for w in windows]
        start = None if any(s is None for s in starts) else min(s for s in starts if s)
        end = None if any(e is None for e in ends) else max(e for e in ends if e)
        return (start, end)


def _add(
    access: PersonAccess,
    policy: CompiledPolicy,
    entitlements: Iterable[Entitlement],
    reason: Reason,
    *,
    enabling: bool,
    doors: bool,
    window: Validity,
    only_new: bool = False,
) -> None:
    """Record ``reason`` on each entitlement (``only_new``: only where nothing else has one)."""
    for target, kind, value in entitlements:
        if kind is None:
            held = access.accounts.setdefault(target, {})
            if only_new and held:
                continue
            held[reason] = None
            if enabling:
                access.enabled.add(target)
            continue
        if kind is EntitlementKind.DOOR_ZONE and not doors:
            continue
        key = (target, kind, value)
        reasons = access.grants.setdefault(key, {})
        if only_new and reasons:
            continue
        reasons[reason] = None
        if policy.targets[target].lifecycle.dated_access:
            access.validity.setdefault(key, []).append(window)


def _assignment_entitlements(
    policy: CompiledPolicy, assignment: Assignment
) -> list[tuple[Reason, tuple[Entitlement, ...]]]:
    """(reason, entitlements) for every birthright target and matching rule's role."""
    org, number = assignment.organisation, assignment.assignment_number
    found: list[tuple[Reason, tuple[Entitlement, ...]]] = []
    if policy.birthright:
        found.append(
            (
                Reason("birthright", None, None, org, number),
                tuple((t, None, "") for t in policy.birthright),
            )
        )
    for rule in policy.matching_rules(assignment):
        for role in rule.roles:
            found.append(
                (Reason("rule", rule.key, role, org, number), policy.role_entitlements[role])
            )
    return found


def person_access(
    person: PersonView,
    policy: CompiledPolicy,
    at: dt.date,
    requests: Iterable[TimeBoundGrant] = (),
) -> PersonAccess:
    """Every account and grant ``person`` should hold on ``at``, each with all its reasons."""
    access = PersonAccess()
    targets = policy.targets
    granting = granting_assignments(person, at)
    for assignment in granting:
        window = (assignment.start_date, assignment.end_date)
        for reason, entitlements in _assignment_entitlements(policy, assignment):
            _add(access, policy, entitlements, reason, enabling=True, doors=True, window=window)

    employed = bool(granting)
    if employed:
        for grant in requests:
            if grant.person_id != person.person_id or not grant.in_force_on(at):
                continue
            if grant.target not in targets:
                continue  # the target left the policy; the request justifies nothing now
            reference = f"#{grant.grant_id}"
            what = "account" if grant.kind is None else f"{grant.kind.value} {grant.value}"
            until = f"until {grant.valid_to}" if grant.valid_to else "no end date"
            reason = Reason(
                "request", reference, what, "", "", f"approved by {grant.approved_by}, {until}"
            )
            items: list[Entitlement] = [(grant.target, None, "")]
            if grant.kind is not None:
                items.append((grant.target, grant.kind, grant.value))
            window = (grant.valid_from, grant.valid_to)
            _add(access, policy, items, reason, enabling=True, doors=True, window=window)

        # Handover: what an ended assignment or a superseded post alone justified is kept
        # for the target's overlap window (never for someone who has left altogether).
        for old in (*person.previous, *person.assignments):
            if old.end_date is None or old.end_date >= at:
                continue
            for reason, entitlements in _assignment_entitlements(policy, old):
                for entitlement in entitlements:
                    days = targets[entitlement[0]].lifecycle.mover_overlap_days
                    kept_until = old.end_date + dt.timedelta(days=days)
                    if days == 0 or at > kept_until:
                        continue
                    kept = Reason(
                        reason.kind, reason.rule, reason.role, reason.organisation,
                        reason.assignment_number,
                        f"handover after a move: kept until {kept_until}",
                    )  # fmt: skip
                    window = (old.start_date, kept_until)
                    _add(
                        access, policy, (entitlement,), kept,
                        enabling=True, doors=True, window=window, only_new=True,
                    )  # fmt: skip

    for assignment in suspended_assignments(person, at):
        window = (assignment.start_date, assignment.end_date)
        for reason, entitlements in _assignment_entitlements(policy, assignment):
            held = Reason(
                reason.kind, reason.rule, reason.role, reason.organisation,
                reason.assignment_number, "suspended: held disabled until the return",
            )  # fmt: skip
            _add(access, policy, entitlements, held, enabling=False, doors=False, window=window)

    # Pre-hire: the account (disabled) and its groups and roles, ready for day one. A person
    # already using the account gets the new post's access on the day, not before.
    for assignment in person.assignments:
        if assignment.start_date <= at:
            continue
        if assignment.end_date is not None and assignment.end_date < assignment.start_date:
            continue  # a withdrawn offer: ended before it started
        days_away = (assignment.start_date - at).days
        window = (assignment.start_date, assignment.end_date)
        for reason, entitlements in _assignment_entitlements(policy, assignment):
            early = Reason(
                reason.kind, reason.rule, reason.role, reason.organisation,
                reason.assignment_number, f"pre-hire: starts {assignment.start_date}",
            )  # fmt: skip
            for entitlement in entitlements:
                target = entitlement[0]
                lifecycle = targets[target].lifecycle
                if lifecycle.prehire_days < days_away or target in access.enabled:
                    continue
                _add(
                    access, policy, (entitlement,), early,
                    enabling=False, doors=lifecycle.dated_access, window=window,
                )  # fmt: skip
    return access


def evaluate(
    people: Iterable[PersonView],
    policy: CompiledPolicy,
    at: dt.date,
    requests: Iterable[TimeBoundGrant] = (),
) -> DesiredState:
    """What every person in ``people`` should hold on ``at``.

    ``evaluated_person_ids`` lists everyone passed in — including leavers with nothing
    desired — so the planner knows whose recorded access to revoke.
    """
    people = list(people)
    by_person: dict[int, list[TimeBoundGrant]] = {}
    for grant in requests:
        by_person.setdefault(grant.person_id, []).append(grant)
    managers = manager_index(people)
    accounts: list[DesiredAccount] = []
    grants: list[DesiredGrant] = []
    for person in sorted(people, key=lambda p: p.person_id):
        access = person_access(person, policy, at, by_person.get(person.person_id, ()))
        if not access.accounts:
            continue
        attributes = account_attributes(person, at, managers)
        if attributes is None:  # pragma: no cover - accounts imply an assignment
            continue
        pid = person.person_id
        for target in sorted(access.accounts):
            accounts.append(
                DesiredAccount(
                    pid,
                    target,
                    attributes,
                    tuple(sorted(access.accounts[target])),
                    enabled=target in access.enabled,
                )
            )
        for key, reasons in sorted(access.grants.items()):
            target, kind, value = key
            valid_from, valid_to = access.grant_validity(key)
            grants.append(
                DesiredGrant(pid, target, kind, value, tuple(sorted(reasons)), valid_from, valid_to)
            )
    return DesiredState(
        at=at,
        accounts=tuple(accounts),
        grants=tuple(grants),
        evaluated_person_ids=frozenset(p.person_id for p in people),
    )
