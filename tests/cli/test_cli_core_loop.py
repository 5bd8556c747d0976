"""The core loop through the real `pasa` command, as an operator runs it, on both engines.

HR extract → identities → policy → plan → apply → targets → explain → audit verify.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cli_helpers import AS_OF, run


def test_core_loop_end_to_end(workdir: Path, db_url: str) -> None:
    run(workdir, db_url, "init")
    run(workdir, db_url, "policy", "load", "examples/policy.yaml")
    run(
        workdir,
        db_url,
        "generate",
        "workforce",
        "--staff",
        "250",
        "--seed",
        "3",
        "--as-of",
        AS_OF,
        "--out",
        "var/esr.csv",
    )
    imported = run(workdir, db_url, "hr", "import", "var/esr.csv", "--as-of", AS_OF)
    assert "rows accepted" in imported.stdout

    planned = json.loads(run(workdir, db_url, "plan", "--at", AS_OF, "--json").stdout)
    kinds = {op["kind"] for op in planned["operations"]}
    assert {"create_account", "add_membership"} <= kinds
    assert all(op["reasons"] for op in planned["operations"])

    run(workdir, db_url, "apply", "--at", AS_OF)
    # Convergence: once applied, nothing is left to do.
    again = json.loads(run(workdir, db_url, "plan", "--at", AS_OF, "--json").stdout)
    assert again["operations"] == []

    # The target system itself now holds the accounts (not only PASA's tables).
    created = [
        op
        for op in planned["operations"]
        if op["kind"] == "create_account" and op["target"] == "ad"
    ]
    directory = sqlite3.connect(workdir / "var" / "targets" / "directory.db")
    usernames = {r[0] for r in directory.execute("SELECT username FROM users")}
    assert {op["username"] for op in created} <= usernames
    assert len(usernames) == len(created) > 0

    # Why does this person have access on ad? The rule, the role and the HR record.
    someone = next(
        op
        for op in planned["operations"]
        if op["kind"] == "add_membership" and op["target"] == "ad"
    )
    employee = someone["payload"].get("employee_number") or created[0]["payload"].get(
        "attributes", {}
    ).get("employee_number")
    explanation = run(workdir, db_url, "explain", str(employee), "ad", "--at", AS_OF).stdout
    assert "rule" in explanation.lower()
    assert str(employee) in explanation

    verify = run(workdir, db_url, "audit", "verify")
    assert "intact" in verify.stdout


def test_bad_input_is_one_clear_sentence(workdir: Path, db_url: str) -> None:
    missing = run(workdir, db_url, "hr", "import", "nope.csv", ok=False)
    assert missing.returncode == 1
    assert "nope.csv does not exist" in missing.stderr

    (workdir / "junk.csv").write_text("just,some,columns\n1,2,3\n", encoding="utf-8")
    run(workdir, db_url, "init")
    junk = run(workdir, db_url, "hr", "import", "junk.csv", ok=False)
    assert junk.returncode == 1
    assert "error:" in junk.stderr
    assert len(junk.stderr.strip().splitlines()) <= 3

    bad_date = run(workdir, db_url, "plan", "--at", "31/02/2026", ok=False)
    assert bad_date.returncode == 1
    assert "not a date" in bad_date.stderr

    no_policy = run(workdir, db_url, "plan", ok=False)
    assert "no access policy is loaded" in no_policy.stderr


def test_audit_verify_fails_on_a_tampered_entry(workdir: Path, db_url: str) -> None:
    import sqlalchemy as sa

    from pasa.store.db import make_engine

    run(workdir, db_url, "init")
    run(workdir, db_url, "policy", "load", "examples/policy.yaml")
    assert "intact" in run(workdir, db_url, "audit", "verify").stdout

    # Someone with database rights rewrites who loaded the policy.
    engine = make_engine(db_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.execute(sa.text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1"))
    engine.dispose()

    tampered = run(workdir, db_url, "audit", "verify", ok=False)
    assert tampered.returncode == 1
    assert "TAMPERED" in tampered.stderr
    assert "entry 1: content edited" in tampered.stderr
