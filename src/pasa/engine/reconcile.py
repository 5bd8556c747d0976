"""Reconciliation: read a target back and compare every account with PASA's recorded state.

Each remote account (and each recorded account the target lacks) gets one kind:

``linked``
    the username is PASA's recorded account on the target and the remote attributes,
    enabled flag and memberships are as recorded;
``drifted``
    linked, but an attribute, the enabled flag or the memberships differ; ``details`` says
    exactly which (``attributes: {name: [recorded, remote]}``, ``enabled: [recorded,
    remote]``, ``memberships: {missing: [...], extra: [...]}``);
``unlinked``
    not recorded, but its ``employee_number`` is a person PASA knows who has no account
    recorded on the target: a candidate to link;
``unmatched``
    not recorded and its ``employee_number`` matches nobody (e.g. made by hand);
``orphan``
    an account of a person PASA records as having no enabled account there: recorded
    disabled or deleted but enabled remotely (or deleted but still present), a second
    account of a person whose recorded account is another, or an account of a leaver
    (every assignment ended);
``missing``
    PASA records an enabled account that the target does not have.

Only attributes the connector reads back are compared (a connector that does not return an
attribute cannot show it drifted); ``password`` is never compared. Memberships and the
enabled flag are compared only when the connector has those capabilities.

Report-only (the default) never writes to the target. With ``correct`` the recorded state is
re-applied to drifted accounts (attributes back, enable/disable, add missing and remove extra
memberships) and orphans are disabled; ``missing``, ``unlinked`` and ``unmatched`` are left
for a person to decide. Every run is stored (``reconciliation_run``), with one
``reconciliation_finding`` row per account that is not ``linked``, and audited
(``reconcile.run``).

Runs are on demand (``pasa reconcile TARGET``) and scheduled: a target with the setting
``reconcile_every_hours`` is reconciled by the scheduler's tick once its last run is that old
(:mod:`pasa.service.reconcile_schedule`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa import clock
from pasa.audit.log import append
from pasa.connectors.base import (
    OWNER_ATTRIBUTE,
    Capability,
    Connector,
    ConnectorError,
    Membership,
    RemoteAccount,
)
from pasa.connectors.registry import build_connector
from pasa.domain.errors import ConfigurationError, NotFoundError
from pasa.domain.grants import AccountStatus
from pasa.hr.importer import EMPLOYEE_SCHEME
from pasa.store import schema as s

POLICY_SETTING = "reconcile"  # target setting: "report" (default) or "correct"
NOT_COMPARED = frozenset({"password"})


class FindingKind(StrEnum):
    LINKED = "linked"
    DRIFTED = "drifted"
    UNLINKED = "unlinked"
    UNMATCHED = "unmatched"
    ORPHAN = "orphan"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    username: str
    person_id: int | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    run_id: int
    target: str
    policy: str  # report | correct
    counts: dict[str, int]
    findings: list[Finding]  # every finding except ``linked`` (those are only counted)
    corrections: int  # connector calls made to correct the target (0 when report-only)
    correction_errors: int


@dataclass(frozen=True, slots=True)
class _Recorded:
    account_id: int
    person_id: int
    username: str
    status: str
    attributes: dict[str, Any]
    memberships: frozenset[Membership]


# --- loading what PASA knows ----------------------------------------------------------------


def _target_row(conn: Connection, target_key: str) -> Any:
    row = conn.execute(sa.select(s.target).where(s.target.c.key == target_key)).first()
    if row is None:
        known = ", ".join(
            conn.execute(sa.select(s.target.c.key).order_by(s.target.c.key)).scalars()
        )
        raise NotFoundError(f"no target '{target_key}' (targets: {known or 'none'})")
    return row


def default_policy(settings: Mapping[str, Any]) -> bool:
    """True when the target's ``reconcile`` setting asks for correction."""
    value = settings.get(POLICY_SETTING, "report")
    if value not in ("report", "correct"):
        raise ConfigurationError(
            f"the '{POLICY_SETTING}' setting must be 'report' or 'correct', got '{value}'"
        )
    return bool(value == "correct")


def _recorded(conn: Connection, target_id: int) -> list[_Recorded]:
    acc, g = s.account, s.account_grant
    grants: dict[int, set[Membership]] = {}
    rows = conn.execute(
        sa.select(g.c.account_id, g.c.kind, g.c.value)
        .select_from(g.join(acc, acc.c.id == g.c.account_id))
        .where(acc.c.target_id == target_id)
    )
    for r in rows:
        grants.setdefault(r.account_id, set()).add((r.kind, r.value))
    return [
        _Recorded(
            account_id=r.id,
            person_id=r.person_id,
            username=r.username,
            status=r.status,
            attributes=dict(r.attributes or {}),
            memberships=frozenset(grants.get(r.id, set())),
        )
        for r in conn.execute(
            sa.select(acc.c.id, acc.c.person_id, acc.c.username, acc.c.status, acc.c.attributes)
            .where(acc.c.target_id == target_id)
            .order_by(acc.c.id)
        )
    ]


def _people_by_employee_number(conn: Connection) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    pi, a = s.person_identifier, s.assignment
    for value, person_id in conn.execute(
        sa.select(pi.c.value, pi.c.person_id).where(pi.c.scheme == EMPLOYEE_SCHEME)
    ):
        out.setdefault(str(value), set()).add(int(person_id))
    for value, person_id in conn.execute(sa.select(a.c.employee_number, a.c.person_id)):
        out.setdefault(str(value), set()).add(int(person_id))
    return out


def _leavers(conn: Connection, at: dt.date) -> set[int]:
    """People with assignments, none of them current or future at ``at``."""
    a = s.assignment
    live = sa.and_(a.c.in_extract.is_(True), sa.or_(a.c.end_date.is_(None), a.c.end_date >= at))
    rows = conn.execute(
        sa.select(a.c.person_id)
        .group_by(a.c.person_id)
        .having(sa.func.sum(sa.case((live, 1), else_=0)) == 0)
    )
    return {int(r[0]) for r in rows}


# --- comparing --------------------------------------------------------------------------------


def _norm(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def attribute_drift(recorded: Mapping[str, Any], remote: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Attribute name -> [recorded, remote] for every compared attribute that differs."""
    drift: dict[str, list[Any]] = {}
    for name in sorted(recorded):
        if name in NOT_COMPARED or name not in remote:
            continue
        if _norm(recorded[name]) != _norm(remote[name]):
            drift[name] = [recorded[name], remote[name]]
    return drift


def _pairs(memberships: Iterable[Membership]) -> list[list[str]]:
    return [[k, v] for k, v in sorted(memberships)]


def _drift(rec: _Recorded, remote: RemoteAccount, caps: frozenset[Capability]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    attrs = attribute_drift(rec.attributes, remote.attributes)
    if attrs:
        details["attributes"] = attrs
    want_enabled = rec.status == AccountStatus.ENABLED
    if Capability.ENABLE_DISABLE in caps and remote.enabled != want_enabled:
        details["enabled"] = [want_enabled, remote.enabled]
    if Capability.MEMBERSHIPS in caps:
        missing = rec.memberships - remote.memberships
        extra = remote.memberships - rec.memberships
        if missing or extra:
            details["memberships"] = {"missing": _pairs(missing), "extra": _pairs(extra)}
    return details


def classify(
    remote_accounts: Iterable[RemoteAccount],
    recorded: Iterable[_Recorded],
    people_by_number: Mapping[str, set[int]],
    leavers: set[int],
    capabilities: frozenset[Capability],
) -> tuple[list[tuple[Finding, RemoteAccount | None, _Recorded | None]], dict[str, int]]:
    """Pure: every remote and recorded account → one finding (with what it was compared to)."""
    by_username = {r.username.casefold(): r for r in recorded}
    by_person = {r.person_id: r for r in by_username.values()}
    seen: set[str] = set()
    out: list[tuple[Finding, RemoteAccount | None, _Recorded | None]] = []
    for remote in remote_accounts:
        key = remote.username.casefold()
        seen.add(key)
        rec = by_username.get(key)
        if rec is not None:
            out.append((_classify_recorded(rec, remote, capabilities), remote, rec))
            continue
        number = _norm(remote.attributes.get(OWNER_ATTRIBUTE))
        people = sorted(people_by_number.get(number, set())) if number else []
        base = {"employee_number": number, "enabled": remote.enabled}
        if not people:
            finding = Finding(FindingKind.UNMATCHED, remote.username, None, base)
        elif len(people) > 1:
            details = {**base, "reason": "ambiguous", "candidates": people}
            finding = Finding(FindingKind.UNMATCHED, remote.username, None, details)
        else:
            person_id = people[0]
            own = by_person.get(person_id)
            if own is not None:
                details = {
                    **base,
                    "reason": "second_account",
                    "recorded_username": own.username,
                    "recorded_status": own.status,
                }
                finding = Finding(FindingKind.ORPHAN, remote.username, person_id, details)
            elif person_id in leavers:
                details = {**base, "reason": "leaver"}
                finding = Finding(FindingKind.ORPHAN, remote.username, person_id, details)
            else:
                details = {**base, "reason": "candidate_to_link"}
                finding = Finding(FindingKind.UNLINKED, remote.username, person_id, details)
        out.append((finding, remote, None))
    for rec in by_username.values():
        if rec.username.casefold() not in seen and rec.status == AccountStatus.ENABLED:
            details = {"recorded_status": rec.status}
            out.append(
                (Finding(FindingKind.MISSING, rec.username, rec.person_id, details), None, rec)
            )
    counts = {kind.value: 0 for kind in FindingKind}
    for finding, _, _ in out:
        counts[finding.kind.value] += 1
    return out, counts


def _classify_recorded(
    rec: _Recorded, remote: RemoteAccount, capabilities: frozenset[Capability]
) -> Finding:
    if rec.status != AccountStatus.ENABLED and (
        remote.enabled or rec.status == AccountStatus.DELETED
    ):
        details = {"reason": f"recorded_{rec.status}", "enabled": remote.enabled}
        return Finding(FindingKind.ORPHAN, remote.username, rec.person_id, details)
    drift = _drift(rec, remote, capabilities)
    kind = FindingKind.DRIFTED if drift else FindingKind.LINKED
    return Finding(kind, remote.username, rec.person_id, drift)


# --- correcting -------------------------------------------------------------------------------


def _correct(
    connector: Connector, finding: Finding, remote: RemoteAccount, rec: _Recorded | None
) -> tuple[list[str], str | None]:
    """Re-apply the recorded state; returns the actions done and an error sentence (or None)."""
    done: list[str] = []
    caps = connector.capabilities
    name = remote.username
    steps: list[tuple[str, Capability, Callable[[], None]]] = []
    if finding.kind is FindingKind.ORPHAN:
        if remote.enabled:
            steps.append(("disable", Capability.ENABLE_DISABLE, lambda: connector.disable(name)))
    elif finding.kind is FindingKind.DRIFTED and rec is not None:
        attrs = finding.details.get("attributes") or {}
        if attrs:
            changes = {a: rec.attributes[a] for a in attrs}
            steps.append(
                (
                    f"update {', '.join(sorted(changes))}",
                    Capability.UPDATE,
                    lambda: connector.update(name, changes),
                )
            )
        if "enabled" in finding.details:
            if rec.status == AccountStatus.ENABLED:
                steps.append(("enable", Capability.ENABLE_DISABLE, lambda: connector.enable(name)))
            else:
                steps.append(
                    ("disable", Capability.ENABLE_DISABLE, lambda: connector.disable(name))
                )
        members = finding.details.get("memberships") or {}
        for kind, value in members.get("missing", []):
            steps.append(
                (
                    f"add {kind} {value}",
                    Capability.MEMBERSHIPS,
                    partial(connector.add_member, name, str(kind), str(value)),
                )
            )
        for kind, value in members.get("extra", []):
            steps.append(
                (
                    f"remove {kind} {value}",
                    Capability.MEMBERSHIPS,
                    partial(connector.remove_member, name, str(kind), str(value)),
                )
            )
    for label, capability, call in steps:
        if capability not in caps:
            return done, f"{label}: the connector cannot {capability.value}"
        try:
            call()
        except ConnectorError as exc:
            return done, f"{label}: {exc}"
        done.append(label)
    return done, None


# --- the run ----------------------------------------------------------------------------------


def reconcile(
    engine: Engine,
    target_key: str,
    *,
    actor: str,
    connector: Connector | None = None,
    correct: bool | None = None,
    at: dt.date | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> ReconciliationReport:
    """Read ``target_key`` back, classify every account, store and audit the findings.

    ``correct=None`` takes the target's ``reconcile`` setting ("report" unless "correct").
    ``connector`` defaults to the one the target's configuration builds. ``now`` stamps the
    run, its findings and its audit entry (default the system clock; the scheduler passes
    its tick's time, see :mod:`pasa.service.reconcile_schedule`).
    """
    now = now or clock.now
    started = now()
    with engine.connect() as conn:
        target = _target_row(conn, target_key)
        settings = dict(target.settings or {})
        do_correct = default_policy(settings) if correct is None else correct
        recorded = _recorded(conn, target.id)
        people = _people_by_employee_number(conn)
        leavers = _leavers(conn, at or clock.today())
    policy = "correct" if do_correct else "report"
    with engine.begin() as conn:
        run_id = int(
            conn.execute(
                s.reconciliation_run.insert()
                .values(
                    target_id=target.id,
                    started_at=started,
                    policy=policy,
                    counts={},
                    actor=actor,
                )
                .returning(s.reconciliation_run.c.id)
            ).scalar_one()
        )
    own = connector is None
    conn_obj = connector or build_connector(target_key, target.connector, settings)
    corrections = errors = 0
    try:
        classified, counts = classify(
            list(conn_obj.list()), recorded, people, leavers, conn_obj.capabilities
        )
        findings: list[Finding] = []
        for finding, remote, rec in classified:
            if finding.kind is FindingKind.LINKED:
                continue
            if (
                do_correct
                and remote is not None
                and finding.kind
                in (
                    FindingKind.DRIFTED,
                    FindingKind.ORPHAN,
                )
            ):
                done, error = _correct(conn_obj, finding, remote, rec)
                corrections += len(done)
                extra: dict[str, Any] = {"corrected": done}
                if error is not None:
                    errors += 1
                    extra["correction_error"] = error
                finding = Finding(
                    finding.kind, finding.username, finding.person_id, {**finding.details, **extra}
                )
            findings.append(finding)
    finally:
        if own:
            conn_obj.close()
    finished = now()
    with engine.begin() as conn:
        if findings:
            conn.execute(
                s.reconciliation_finding.insert(),
                [
                    {
                        "run_id": run_id,
                        "target_id": target.id,
                        "username": f.username,
                        "person_id": f.person_id,
                        "kind": f.kind.value,
                        "details": f.details,
                        "found_at": finished,
                    }
                    for f in findings
                ],
            )
        conn.execute(
            s.reconciliation_run.update()
            .where(s.reconciliation_run.c.id == run_id)
            .values(finished_at=finished, counts=counts)
        )
        append(
            conn,
            actor=actor,
            action="reconcile.run",
            subject_type="target",
            subject_id=target_key,
            details={
                "run_id": run_id,
                "policy": policy,
                "counts": counts,
                "corrections": corrections,
                "correction_errors": errors,
            },
            at=finished,
        )
    return ReconciliationReport(
        run_id=run_id,
        target=target_key,
        policy=policy,
        counts=counts,
        findings=findings,
        corrections=corrections,
        correction_errors=errors,
    )
