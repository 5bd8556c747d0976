"""Reconciliation against the in-memory connector, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from reconcile_helpers import add_assignment, add_person, add_target, record_account
from sqlalchemy.engine import Engine

from pasa.audit.log import verify
from pasa.connectors.kit import sample_attributes
from pasa.connectors.memory import MemoryConnector
from pasa.domain.errors import ConfigurationError, NotFoundError
from pasa.engine.reconcile import FindingKind, ReconciliationReport, reconcile
from pasa.store import schema as s

AT = dt.date(2026, 8, 5)
STAFF = ("group", "staff")
PACS = ("group", "pacs-users")


@dataclass
class Trust:
    target_id: int
    connector: MemoryConnector


def _provision(
    connector: MemoryConnector,
    username: str,
    number: str,
    memberships: tuple[tuple[str, str], ...] = (STAFF,),
    **overrides: str,
) -> dict[str, object]:
    attributes = sample_attributes(number, **overrides)
    connector.create(username, attributes)
    for kind, value in memberships:
        connector.add_member(username, kind, value)
    return attributes


@pytest.fixture
def trust(engine: Engine) -> Trust:
    """One target holding an example of every finding kind."""
    tid = add_target(engine, "pacs")
    c = MemoryConnector("pacs")
    # linked: as recorded.
    add_person(engine, 1, "10000001")
    attrs = _provision(c, "alinked", "10000001")
    record_account(engine, tid, 1, "alinked", attrs, memberships=[STAFF])
    # drifted: job title edited, disabled by hand, staff group removed, pacs-users added.
    add_person(engine, 2, "10000002")
    attrs = _provision(c, "bdrift", "10000002", memberships=(PACS,), job_title="Sister")
    c.disable("bdrift")
    recorded = {**attrs, "job_title": "Radiographer"}
    record_account(engine, tid, 2, "bdrift", recorded, memberships=[STAFF])
    # unlinked: a known person's account PASA did not create (made before PASA).
    add_person(engine, 3, "10000003")
    _provision(c, "cunlinked", "10000003")
    # unmatched: made by hand for nobody PASA knows.
    _provision(c, "handmade", "99999999")
    # orphan: PASA disabled it (a leaver), someone re-enabled it.
    add_person(engine, 4, "10000004")
    attrs = _provision(c, "dorphan", "10000004")
    record_account(engine, tid, 4, "dorphan", attrs, status="disabled", memberships=[STAFF])
    # orphan: an account of a leaver PASA never recorded.
    add_person(engine, 5, "10000005")
    add_assignment(engine, 5, "10000005", end_date=dt.date(2026, 3, 31))
    _provision(c, "eleaver", "10000005")
    # missing: recorded enabled, absent from the target.
    add_person(engine, 6, "10000006")
    record_account(engine, tid, 6, "fmissing", sample_attributes("10000006"))
    c.calls.clear()
    return Trust(tid, c)


def _by_username(report: ReconciliationReport) -> dict[str, FindingKind]:
    return {f.username: f.kind for f in report.findings}


def test_every_kind_is_found_with_its_details(engine: Engine, trust: Trust) -> None:
    report = reconcile(engine, "pacs", actor="test", connector=trust.connector, at=AT)

    assert report.counts == {
        "linked": 1,
        "drifted": 1,
        "unlinked": 1,
        "unmatched": 1,
        "orphan": 2,
        "missing": 1,
    }
    assert report.policy == "report"
    assert _by_username(report) == {
        "bdrift": FindingKind.DRIFTED,
        "cunlinked": FindingKind.UNLINKED,
        "handmade": FindingKind.UNMATCHED,
        "dorphan": FindingKind.ORPHAN,
        "eleaver": FindingKind.ORPHAN,
        "fmissing": FindingKind.MISSING,
    }
    found = {f.username: f for f in report.findings}
    assert found["bdrift"].details == {
        "attributes": {"job_title": ["Radiographer", "Sister"]},
        "enabled": [True, False],
        "memberships": {"missing": [["group", "staff"]], "extra": [["group", "pacs-users"]]},
    }
    assert found["cunlinked"].person_id == 3
    assert found["cunlinked"].details["reason"] == "candidate_to_link"
    assert found["handmade"].person_id is None
    assert found["dorphan"].details["reason"] == "recorded_disabled"
    assert found["eleaver"].details["reason"] == "leaver"
    assert found["eleaver"].person_id == 5
    assert found["fmissing"].person_id == 6


def test_run_and_findings_are_stored_and_audited(engine: Engine, trust: Trust) -> None:
    report = reconcile(engine, "pacs", actor="alice", connector=trust.connector, at=AT)
    with engine.connect() as conn:
        run = conn.execute(sa.select(s.reconciliation_run)).one()
        rows = conn.execute(
            sa.select(s.reconciliation_finding).order_by(s.reconciliation_finding.c.username)
        ).all()
        audit = conn.execute(
            sa.select(s.audit_log).where(s.audit_log.c.action == "reconcile.run")
        ).one()
        assert verify(conn).ok
    assert run.id == report.run_id
    assert run.target_id == trust.target_id
    assert run.policy == "report"
    assert run.actor == "alice"
    assert run.finished_at is not None
    assert run.counts == report.counts
    assert [(r.username, r.kind) for r in rows] == [
        ("bdrift", "drifted"),
        ("cunlinked", "unlinked"),
        ("dorphan", "orphan"),
        ("eleaver", "orphan"),
        ("fmissing", "missing"),
        ("handmade", "unmatched"),
    ]
    assert all(r.run_id == run.id for r in rows)
    drift = next(r for r in rows if r.username == "bdrift")
    assert drift.details["attributes"] == {"job_title": ["Radiographer", "Sister"]}
    assert audit.actor == "alice"
    assert audit.subject_id == "pacs"
    assert audit.details["run_id"] == run.id
    assert audit.details["counts"]["orphan"] == 2


def test_report_only_never_writes_to_the_target(engine: Engine, trust: Trust) -> None:
    before = {a.username: a for a in trust.connector.list()}
    trust.connector.calls.clear()
    reconcile(engine, "pacs", actor="test", connector=trust.connector, at=AT)
    assert {m for m, _ in trust.connector.calls} == {"list"}
    assert {a.username: a for a in trust.connector.list()} == before


def test_correct_mode_fixes_drift_and_disables_orphans(engine: Engine, trust: Trust) -> None:
    report = reconcile(engine, "pacs", actor="test", connector=trust.connector, correct=True, at=AT)
    assert report.policy == "correct"
    assert report.correction_errors == 0
    drift = next(f for f in report.findings if f.username == "bdrift")
    assert drift.details["corrected"] == [
        "update job_title",
        "enable",
        "add group staff",
        "remove group pacs-users",
    ]
    c = trust.connector
    fixed = c.read("bdrift")
    assert fixed is not None
    assert fixed.enabled
    assert fixed.attributes["job_title"] == "Radiographer"
    assert fixed.memberships == frozenset({STAFF})
    for name in ("dorphan", "eleaver"):
        account = c.read(name)
        assert account is not None and not account.enabled
    # Neither unlinked, unmatched nor missing accounts are touched.
    for name in ("cunlinked", "handmade"):
        account = c.read(name)
        assert account is not None and account.enabled
    assert c.read("fmissing") is None
    assert c.calls_to("create") == 0
    assert c.calls_to("delete") == 0

    again = reconcile(engine, "pacs", actor="test", connector=c, correct=True, at=AT)
    assert again.counts["drifted"] == 0
    assert again.counts["linked"] == 3  # alinked, bdrift and the disabled dorphan
    assert again.corrections == 0
    orphans = [f for f in again.findings if f.kind is FindingKind.ORPHAN]
    assert [f.username for f in orphans] == ["eleaver"]
    assert orphans[0].details["enabled"] is False


def test_policy_defaults_to_the_target_setting(engine: Engine) -> None:
    tid = add_target(engine, "auto", reconcile="correct")
    add_person(engine, 1, "10000001")
    c = MemoryConnector("auto")
    c.create("auser", sample_attributes("10000001"))
    record_account(engine, tid, 1, "auser", sample_attributes("10000001", department="ED"))
    report = reconcile(engine, "auto", actor="test", connector=c, at=AT)
    assert report.policy == "correct"
    remote = c.read("auser")
    assert remote is not None and remote.attributes["department"] == "ED"
    # An explicit report-only overrides the target's setting.
    c.update("auser", {"department": "Theatres"})
    c.calls.clear()
    report = reconcile(engine, "auto", actor="test", connector=c, correct=False, at=AT)
    assert report.policy == "report"
    assert report.counts["drifted"] == 1
    assert c.calls_to("update") == 0


def test_a_second_account_of_a_linked_person_is_an_orphan(engine: Engine) -> None:
    tid = add_target(engine, "mail")
    add_person(engine, 1, "10000001")
    c = MemoryConnector("mail")
    c.create("jsmith", sample_attributes("10000001"))
    c.create("jsmith-old", sample_attributes("10000001"))
    record_account(engine, tid, 1, "jsmith", sample_attributes("10000001"))
    report = reconcile(engine, "mail", actor="test", connector=c, at=AT)
    assert report.counts["linked"] == 1
    assert [(f.username, f.kind, f.details["reason"]) for f in report.findings] == [
        ("jsmith-old", FindingKind.ORPHAN, "second_account")
    ]


def test_unknown_target_and_bad_setting_are_clear_errors(engine: Engine) -> None:
    add_target(engine, "odd", reconcile="sometimes")
    with pytest.raises(NotFoundError, match="no target 'nope'"):
        reconcile(engine, "nope", actor="test", connector=MemoryConnector())
    with pytest.raises(ConfigurationError, match="'report' or 'correct'"):
        reconcile(engine, "odd", actor="test", connector=MemoryConnector())


def test_connector_is_built_from_the_target_without_the_policy_setting(engine: Engine) -> None:
    add_target(engine, "built", reconcile="report")
    report = reconcile(engine, "built", actor="test", at=AT)
    assert sum(report.counts.values()) == 0
