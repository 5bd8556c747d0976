"""Time-bound grants, what-if and explain for a future date through the real `pasa` command."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cli_helpers import AS_OF, run


def _trust(workdir: Path, db_url: str) -> dict[str, object]:
    run(workdir, db_url, "init")
    run(workdir, db_url, "policy", "load", "examples/policy.yaml")
    run(
        workdir, db_url, "generate", "workforce", "--staff", "120", "--seed", "4",
        "--as-of", AS_OF, "--out", "var/esr.csv",
    )  # fmt: skip
    run(workdir, db_url, "hr", "import", "var/esr.csv", "--as-of", AS_OF)
    planned = json.loads(run(workdir, db_url, "plan", "--at", AS_OF, "--json").stdout)
    run(workdir, db_url, "apply", "--at", AS_OF)
    create = next(
        op
        for op in planned["operations"]
        if op["kind"] == "create_account" and op["target"] == "ad"
    )
    return create


def _groups(workdir: Path, username: str) -> set[str]:
    directory = sqlite3.connect(workdir / "var" / "targets" / "directory.db")
    try:
        rows = directory.execute(
            "SELECT value FROM user_groups WHERE username = ?", (username,)
        ).fetchall()
    finally:
        directory.close()
    return {r[0] for r in rows}


def test_a_time_bound_grant_lands_in_the_target_and_goes_at_its_end(
    workdir: Path, db_url: str
) -> None:
    create = _trust(workdir, db_url)
    username = str(create["username"])
    employee = str(create["payload"]["attributes"]["employee_number"])  # type: ignore[index]
    assert "GG-Research-Data" not in _groups(workdir, username)

    added = run(
        workdir, db_url, "grant", "add", employee, "--target", "ad",
        "--group", "GG-Research-Data", "--justification", "audit of sepsis outcomes",
        "--approved-by", "information-asset-owner", "--from", AS_OF, "--until", "2026-12-04",
    )  # fmt: skip
    assert "Grant #1 recorded" in added.stdout
    run(workdir, db_url, "apply", "--at", AS_OF)
    assert "GG-Research-Data" in _groups(workdir, username)

    why = run(workdir, db_url, "explain", employee, "ad", "--at", AS_OF).stdout
    assert "approved request #1" in why and "information-asset-owner" in why

    run(workdir, db_url, "apply", "--at", "2026-12-04")  # the last day: still there
    assert "GG-Research-Data" in _groups(workdir, username)
    run(workdir, db_url, "apply", "--at", "2026-12-05")
    assert "GG-Research-Data" not in _groups(workdir, username)

    same_person = run(
        workdir, db_url, "grant", "add", employee, "--target", "ad", "--group", "X",
        "--justification", "j", "--approved-by", "test-operator", ok=False,
    )  # fmt: skip
    assert "separation of duties" in same_person.stderr


def test_whatif_of_a_rule_change_lists_gainers_and_writes_nothing(
    workdir: Path, db_url: str
) -> None:
    _trust(workdir, db_url)
    changed = (workdir / "examples" / "policy.yaml").read_text(encoding="utf-8")
    changed = changed.replace(
        "groups: [GG-All-Staff, GG-Intranet, GG-Email]",
        "groups: [GG-All-Staff, GG-Intranet, GG-Email, GG-Teams]",
    )
    assert "GG-Teams" in changed
    (workdir / "changed.yaml").write_text(changed, encoding="utf-8")
    before = run(workdir, db_url, "plan", "--at", AS_OF, "--json").stdout

    result = json.loads(
        run(workdir, db_url, "whatif", "--policy", "changed.yaml", "--at", AS_OF, "--json").stdout
    )
    added = [o for o in result["operations"] if o["kind"] == "add_membership"]
    assert added and all("GG-Teams" in o["summary"] for o in added)
    assert len(result["gains"]) == len(added) and not result["losses"]
    assert run(workdir, db_url, "plan", "--at", AS_OF, "--json").stdout == before
