"""CLI: API tokens are printed once and only hashed at rest; roles are granted and revoked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlalchemy as sa
from cli_helpers import run

from pasa.store import schema as s
from pasa.store.db import make_engine, migrate


def _organisations(db_url: str, *codes: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        for code in codes:
            conn.execute(
                s.organisation.insert().values(
                    ods_code=code, name=f"Trust {code}", created_at=dt.datetime.now(dt.UTC)
                )
            )
    engine.dispose()


def test_a_scim_token_is_printed_once_and_can_be_revoked(workdir: Path, db_url: str) -> None:
    _organisations(db_url, "RXL")
    created = run(workdir, db_url, "token", "create", "--org", "rxl", "--scope", "scim")
    secret = created.stdout.strip()
    assert secret.startswith("pasa_") and "\n" not in secret
    assert "Store it now" in created.stderr and secret not in created.stderr

    listed = run(workdir, db_url, "token", "list", "--json")
    assert secret not in listed.stdout
    [token] = json.loads(listed.stdout)
    assert token["organisation"] == "RXL" and token["scopes"] == ["scim"]
    assert token["state"] == "active" and secret.startswith(token["prefix"])
    assert "never" in run(workdir, db_url, "token", "list").stdout

    engine = make_engine(db_url)
    with engine.connect() as conn:
        everything = repr(conn.execute(sa.select(s.api_token)).all())
        everything += repr(conn.execute(sa.select(s.audit_log)).all())
    engine.dispose()
    assert secret not in everything

    run(workdir, db_url, "token", "revoke", str(token["id"]))
    assert json.loads(run(workdir, db_url, "token", "list", "--json").stdout)[0]["state"] == (
        "revoked"
    )


def test_bad_token_and_role_requests_exit_1_with_one_sentence(workdir: Path, db_url: str) -> None:
    _organisations(db_url, "RXL")
    bad_scope = run(workdir, db_url, "token", "create", "--org", "RXL", "--scope", "root", ok=False)
    assert bad_scope.returncode == 1 and "unknown scope 'root'" in bad_scope.stderr
    assert bad_scope.stdout == ""
    bad_org = run(workdir, db_url, "token", "create", "--org", "ZZZ", "--scope", "scim", ok=False)
    assert (
        bad_org.returncode == 1 and "no organisation 'ZZZ' (organisations: RXL)" in bad_org.stderr
    )
    derived = run(
        workdir, db_url, "role", "grant", "a@nhs.net", "line_manager", "--org", "RXL", ok=False
    )
    assert derived.returncode == 1 and "follows from HR" in derived.stderr


def test_roles_are_granted_listed_and_revoked(workdir: Path, db_url: str) -> None:
    _organisations(db_url, "RXL", "RYJ")
    run(workdir, db_url, "role", "grant", "IT.Lead@nhs.net", "org_admin", "--org", "RXL")
    run(workdir, db_url, "role", "grant", "root@nhs.net", "platform_admin")
    roles = json.loads(run(workdir, db_url, "role", "list", "--json").stdout)
    assert [(r["subject"], r["role"], r["organisation"]) for r in roles] == [
        ("it.lead@nhs.net", "org_admin", "RXL"),
        ("root@nhs.net", "platform_admin", None),
    ]
    assert "org_admin of RXL" in run(workdir, db_url, "role", "list", "it.lead@nhs.net").stdout
    run(workdir, db_url, "role", "revoke", str(roles[0]["id"]))
    assert "it.lead" not in run(workdir, db_url, "role", "list").stdout
