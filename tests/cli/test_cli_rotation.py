"""A rotation batch through the real `pasa` command: import, preview, approve by someone else,
executed by the worker on its date, reported; a second batch cancelled before its date."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from pathlib import Path

from cli_helpers import AS_OF, run


def _departments(path: Path) -> dict[str, str]:
    """Primary assignment's department name per employee number."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return {
            row["Employee_Number"]: row["Department_Name"]
            for row in csv.DictReader(handle)
            if row["Primary_Assignment"] == "Y"
        }


def test_a_rotation_batch_moves_people_on_its_date_and_only_after_approval(
    workdir: Path, db_url: str
) -> None:
    # The worker runs on the real clock, so the batch is due today.
    today = dt.date.today().isoformat()
    run(workdir, db_url, "init")
    run(workdir, db_url, "policy", "load", "examples/policy.yaml")
    run(
        workdir, db_url, "generate", "workforce", "--staff", "150", "--seed", "9",
        "--as-of", AS_OF, "--out", "var/esr.csv",
    )  # fmt: skip
    run(workdir, db_url, "hr", "import", "var/esr.csv", "--as-of", AS_OF)
    run(workdir, db_url, "apply", "--at", AS_OF)
    run(
        workdir, db_url, "generate", "rotation", "--from", "var/esr.csv", "--movers", "25",
        "--date", today, "--out", "var/rotation.csv",
    )  # fmt: skip

    imported = run(
        workdir, db_url, "rotation", "import", "var/rotation.csv", "--name", "Test rotation",
        "--date", today,
    )  # fmt: skip
    assert "rotation batch 1 'Test rotation'" in imported.stdout
    assert "25 people" in imported.stdout

    preview = json.loads(run(workdir, db_url, "rotation", "preview", "1", "--json").stdout)
    assert preview["movers"] == 25
    assert preview["operations"] > 0
    assert preview["by_target"]["ad"]["attribute_updates"] > 0

    # Nothing moves before approval, and the importer cannot approve their own batch.
    run(workdir, db_url, "worker", "--once")
    listed = json.loads(run(workdir, db_url, "rotation", "list", "--json").stdout)
    assert listed[0]["status"] == "imported"
    refused = run(workdir, db_url, "rotation", "approve", "1", ok=False)
    assert refused.returncode != 0
    assert "someone else must approve it" in refused.stderr
    approved = run(workdir, db_url, "rotation", "approve", "1", actor="rota-coordinator")
    assert "Approved" in approved.stdout

    run(workdir, db_url, "worker", "--once")
    listed = json.loads(run(workdir, db_url, "rotation", "list", "--json").stdout)
    assert listed[0]["status"] == "executed"
    assert listed[0]["approved_by"] == "rota-coordinator"
    report = json.loads(run(workdir, db_url, "rotation", "report", "1", "--json").stdout)
    assert report["people"] == 25
    assert report["failures"] == 0
    assert report["operations"] > 0

    # The directory now carries the movers' new departments.
    before, after = (
        _departments(workdir / "var/esr.csv"),
        _departments(workdir / "var/rotation.csv"),
    )
    moved = {e: d for e, d in after.items() if before.get(e) not in (None, d)}
    assert moved
    directory = sqlite3.connect(workdir / "var" / "targets" / "directory.db")
    try:
        held = dict(directory.execute("SELECT employee_number, department FROM users"))
    finally:
        directory.close()
    assert all(held[e] == d for e, d in moved.items() if e in held)
    assert any(e in held for e in moved)

    # A second batch, cancelled before its date, moves nobody and cannot be approved.
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    run(
        workdir, db_url, "generate", "rotation", "--from", "var/rotation.csv", "--movers", "5",
        "--date", tomorrow, "--seed", "2", "--out", "var/rotation2.csv",
    )  # fmt: skip
    run(
        workdir, db_url, "rotation", "import", "var/rotation2.csv", "--name", "Spare",
        "--date", tomorrow,
    )  # fmt: skip
    cancelled = run(
        workdir, db_url, "rotation", "cancel", "2", "--reason", "deanery sent a new list"
    )
    assert "nobody will be moved" in cancelled.stdout
    late = run(workdir, db_url, "rotation", "approve", "2", actor="rota-coordinator", ok=False)
    assert "cancelled" in late.stderr
    audit = run(workdir, db_url, "audit", "verify")
    assert audit.returncode == 0
