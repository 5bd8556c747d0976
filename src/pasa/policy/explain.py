"""Why does a person have (or not have) access? The answer ``pasa explain`` prints.

WHY: every desired account and grant with each reason — rule, role, organisation,
assignment number and position. WHY NOT: for every rule that would grant something on the
target(s) asked about but did not match, the first condition that failed for each active
assignment, or that there is no active assignment on the date. Any date works, past or
future: lifecycle windows (pre-hire, suspension, handover after a move) and approved
requests are shown as they stand on that date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pasa.domain.grants import Reason, TimeBoundGrant
from pasa.domain.model import Assignment, AssignmentStatus, PersonView
from pasa.policy.evaluate import CompiledPolicy, granting_assignments, person_access
from pasa.policy.predicates import describe, first_failure

_KIND_WORDS = {"group": "group", "app_role": "app role", "door_zone": "door zone"}


@dataclass(frozen=True, slots=True)
class ReasonDetail:
    """One reason, resolved against the person's HR record."""

    kind: str
    rule: str | None
    role: str | None
    organisation: str
    assignment_number: str
    position_number: str | None
    position_title: str | None
    detail: str = ""

    def text(self) -> str:
        note = f" [{self.detail}]" if self.detail else ""
        if self.kind == "request":
            return f"approved request {self.rule} ({self.role}){note}"
        post = ""
        if self.position_number is not None:
            post = f", position {self.position_number} '{self.position_title}'"
        record = f"assignment {self.assignment_number} at {self.organisation}{post}"
        if self.kind == "birthright":
            return f"birthright (every active assignment): {record}{note}"
        return f"rule '{self.rule}' -> role '{self.role}': {record}{note}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "role": self.role,
            "organisation": self.organisation,
            "assignment_number": self.assignment_number,
            "position_number": self.position_number,
            "position_title": self.position_title,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class WhyAccount:
    target: str
    reasons: tuple[ReasonDetail, ...]
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class WhyGrant:
    target: str
    kind: str
    value: str
    reasons: tuple[ReasonDetail, ...]


@dataclass(frozen=True, slots=True)
class AssignmentMiss:
    """Why one rule did not match one assignment."""

    assignment_number: str
    organisation: str
    failure: str


@dataclass(frozen=True, slots=True)
class WhyNot:
    """A rule that would grant something on the target(s) asked about, but did not match."""

    rule: str
    description: str
    roles: tuple[str, ...]
    targets: tuple[str, ...]
    condition: str
    misses: tuple[AssignmentMiss, ...]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    person_id: int
    display_name: str
    at: dt.date
    target: str | None
    accounts: tuple[WhyAccount, ...]
    grants: tuple[WhyGrant, ...]
    why_not: tuple[WhyNot, ...]
    notes: tuple[str, ...]

    def render_text(self) -> str:
        """Plain lines for the terminal."""
        scope = f" on {self.target}" if self.target else ""
        lines = [f"{self.display_name} (person {self.person_id}) on {self.at.isoformat()}{scope}"]
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append("")
        lines.append("Has access because:")
        if not self.accounts:
            lines.append("  nothing: no account is justified")
        grants_by_target: dict[str, list[WhyGrant]] = {}
        for g in self.grants:
            grants_by_target.setdefault(g.target, []).append(g)
        for account in self.accounts:
            state = "" if account.enabled else " (held disabled)"
            lines.append(f"  account on {account.target}{state}")
            lines.extend(f"    - {r.text()}" for r in account.reasons)
            for g in grants_by_target.get(account.target, []):
                lines.append(f"    {_KIND_WORDS.get(g.kind, g.kind)} {g.value}")
                lines.extend(f"      - {r.text()}" for r in g.reasons)
        # With no active assignment every rule fails for the same reason: say it once.
        if self.why_not and all(w.note and not w.misses for w in self.why_not):
            lines.append("")
            lines.append(f"Not granted by any of {len(self.why_not)} rules: {self.why_not[0].note}")
        elif self.why_not:
            lines.append("")
            lines.append("Not granted by:")
            for w in self.why_not:
                roles = ", ".join(w.roles)
                lines.append(f"  rule '{w.rule}' (roles {roles}; targets {', '.join(w.targets)})")
                lines.append(f"    needs: {w.condition}")
                if w.note:
                    lines.append(f"    - {w.note}")
                lines.extend(
                    f"    - assignment {m.assignment_number} at {m.organisation}: {m.failure}"
                    for m in w.misses
                )
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for ``--json``."""
        return {
            "person_id": self.person_id,
            "display_name": self.display_name,
            "at": self.at.isoformat(),
            "target": self.target,
            "notes": list(self.notes),
            "accounts": [
                {
                    "target": a.target,
                    "enabled": a.enabled,
                    "reasons": [r.as_dict() for r in a.reasons],
                }
                for a in self.accounts
            ],
            "grants": [
                {
                    "target": g.target,
                    "kind": g.kind,
                    "value": g.value,
                    "reasons": [r.as_dict() for r in g.reasons],
                }
                for g in self.grants
            ],
            "why_not": [
                {
                    "rule": w.rule,
                    "description": w.description,
                    "roles": list(w.roles),
                    "targets": list(w.targets),
                    "condition": w.condition,
                    "note": w.note,
                    "assignments": [
                        {
                            "assignment_number": m.assignment_number,
                            "organisation": m.organisation,
                            "failure": m.failure,
                        }
                        for m in w.misses
                    ],
                }
                for w in self.why_not
            ],
        }


def _detail(reason: Reason, by_number: dict[tuple[str, str], Assignment]) -> ReasonDetail:
    assignment = by_number.get((reason.organisation, reason.assignment_number))
    return ReasonDetail(
        kind=reason.kind,
        rule=reason.rule,
        role=reason.role,
        organisation=reason.organisation,
        assignment_number=reason.assignment_number,
        position_number=assignment.position.position_number if assignment else None,
        position_title=assignment.position.title if assignment else None,
        detail=reason.detail,
    )


def explain(
    person: PersonView,
    policy: CompiledPolicy,
    at: dt.date,
    target: str | None = None,
    requests: Iterable[TimeBoundGrant] = (),
) -> Explanation:
    """Why ``person`` has, and does not have, access on ``at`` (optionally on one target)."""
    by_number = {(a.organisation, a.assignment_number): a for a in person.assignments}
    # A superseded version explains handover reasons: same number, the old post.
    for old in person.previous:
        by_number.setdefault((old.organisation, old.assignment_number), old)
    access = person_access(person, policy, at, requests)

    def wanted(t: str) -> bool:
        return target is None or t == target

    accounts = tuple(
        WhyAccount(t, tuple(_detail(r, by_number) for r in sorted(reasons)), t in access.enabled)
        for t, reasons in sorted(access.accounts.items())
        if wanted(t)
    )
    grants = tuple(
        WhyGrant(t, kind.value, value, tuple(_detail(r, by_number) for r in sorted(reasons)))
        for (t, kind, value), reasons in sorted(access.grants.items())
        if wanted(t)
    )

    notes: list[str] = []
    active = person.active_assignments(at)
    granting = granting_assignments(person, at)
    no_active = f"no active assignment on {at.isoformat()}"
    if not active:
        notes.append(no_active)
    for a in active:
        if a.status == AssignmentStatus.SUSPENDED:
            notes.append(
                f"assignment {a.assignment_number} at {a.organisation} is suspended: its "
                "accounts are held disabled and its door zones removed until the return"
            )
        elif a.end_date is not None:
            notes.append(
                f"assignment {a.assignment_number} at {a.organisation} ends on {a.end_date}; "
                "its access goes at the end of that day"
            )
    for a in person.assignments:
        if a.start_date > at:
            notes.append(
                f"assignment {a.assignment_number} at {a.organisation} starts on "
                f"{a.start_date} (pre-hire on {at.isoformat()})"
            )
    if target is not None and target not in policy.targets:
        notes.append(f"'{target}' is not a target in the policy")
    if target is not None and target in policy.birthright and not granting:
        notes.append(f"{target} is a birthright target, but {no_active} grants it")

    why_not: list[WhyNot] = []
    for rule in policy.rules:
        targets = policy.rule_targets(rule)
        if target is not None and target not in targets:
            continue
        if any(rule.matches(a) for a in granting):
            continue
        misses = tuple(
            AssignmentMiss(
                a.assignment_number,
                a.organisation,
                first_failure(rule.predicate, a) or "matches, but the assignment is suspended",
            )
            for a in active
        )
        why_not.append(
            WhyNot(
                rule=rule.key,
                description=rule.description,
                roles=rule.roles,
                targets=tuple(sorted(targets)),
                condition=describe(rule.predicate),
                misses=misses,
                note=no_active if not active else None,
            )
        )
    return Explanation(
        person_id=person.person_id,
        display_name=person.display_name,
        at=at,
        target=target,
        accounts=accounts,
        grants=grants,
        why_not=tuple(why_not),
        notes=tuple(notes),
    )
