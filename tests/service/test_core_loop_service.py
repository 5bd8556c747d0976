"""The core loop through the application services, checked in the target systems themselves."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from pasa.hr.importer import approve_import, import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.policy.document import load_policy_file
from pasa.service import provisioning
from pasa.service.demo import truncate_extract
from pasa.service.readiness import summarise
from pasa.store.policy_repo import save_policy

REPO = Path(__file__).resolve().parents[2]
DAY1 = dt.date(2026, 11, 24)


@pytest.fixture
def trust(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A provisioned 300-staff trust; target systems are SQLite files under tmp_path/var."""
    monkeypatch.chdir(tmp_path)
    with engine.begin() as conn:
        save_policy(
            conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="t", actor="t"
        )
    generate_workforce(tmp_path / "day1.csv", staff=300, org="RXL", seed=5, as_of=DAY1)
    import_extract(engine, tmp_path / "day1.csv", actor="t", as_of=DAY1)
    provisioning.apply(engine, DAY1, actor="t")
    provisioning.execute(engine)
    return engine


def _directory(tmp_path: Path) -> dict[str, int]:
    db = sqlite3.connect(tmp_path / "var" / "targets" / "directory.db")
    try:
        users = dict(db.execute("SELECT username, enabled FROM users").fetchall())
        return users
    finally:
        db.close()


def test_truncated_extract_deprovisions_nothing_until_approved(
    trust: Engine, tmp_path: Path
) -> None:
    before = _directory(tmp_path)
    held_disabled = {u for u, enabled in before.items() if not enabled}  # suspended staff
    assert before and len(held_disabled) < len(before) // 20

    truncate_extract(tmp_path / "day1.csv", tmp_path / "truncated.csv", keep=0.5)
    day2 = DAY1 + dt.timedelta(days=1)
    held = import_extract(trust, tmp_path / "truncated.csv", actor="t", as_of=day2)
    assert held.status == "held"
    assert "guard" in (held.guard_reason or "")

    plan = provisioning.compute_plan(trust, day2).plan
    assert not [op for op in plan.operations if op.kind.value in {"disable", "remove_membership"}]
    provisioning.apply(trust, day2, actor="t")
    provisioning.execute(trust)
    assert _directory(tmp_path) == before

    # Once someone approves the held import, the absent people are disabled in the target.
    approve_import(trust, held.import_id, actor="identity-lead")
    provisioning.apply(trust, day2, actor="t")
    provisioning.execute(trust)
    after = _directory(tmp_path)
    disabled = {u for u, enabled in after.items() if not enabled}
    assert held_disabled < disabled and len(disabled) < len(after)


def test_readiness_counts_every_active_person(trust: Engine) -> None:
    summary = summarise(trust, DAY1)
    assert summary.people > 250
    ad = summary.by_target["ad"]
    # Everyone with a directory account is ready (suspended staff hold none, by policy).
    assert ad["ready"] == sum(ad.values()) >= summary.people - 5
    # PACS is fulfilled by hand: those people wait on a manual task, visibly.
    if "pacs" in summary.by_target:
        assert summary.by_target["pacs"]["manual"] > 0
    assert summary.people_fully_ready <= summary.people


def test_replanning_after_apply_is_empty_and_what_if_writes_nothing(trust: Engine) -> None:
    assert provisioning.compute_plan(trust, DAY1).plan.operations == ()
    later = DAY1 + dt.timedelta(days=400)
    first = provisioning.compute_plan(trust, later).plan
    second = provisioning.compute_plan(trust, later).plan
    assert first.operations == second.operations  # a what-if leaves no trace
