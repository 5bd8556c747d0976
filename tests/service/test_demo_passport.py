"""The demo's passport step on a small hub: a member of staff at RXL collects credentials into
a wallet under the var dir, RYJ verifies them in-process, and ends with a pre-hire person whose
pre-provisioning is planned."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.engine import Engine

from pasa.hr.importer import import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.passport.keys import KEK_ENV
from pasa.policy.document import load_policy_file
from pasa.service.demo_passport import RECEIVER, passport_demo
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy

REPO = Path(__file__).resolve().parents[2]


def test_passport_demo_pre_hires_the_doctor_at_the_second_organisation(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example policy's targets are SQLite files under ./var
    monkeypatch.setenv("PASA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PASA_PUBLIC_URL", "https://pasa.demo.nhs.uk")
    monkeypatch.setenv(KEK_ENV, "")  # none configured (and restored after the demo sets one)
    today = dt.date.today()
    generate_workforce(tmp_path / "esr.csv", staff=100, org="RXL", seed=3, as_of=today)
    import_extract(engine, tmp_path / "esr.csv", actor="tests", as_of=today)
    with engine.begin() as conn:
        save_policy(
            conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="t", actor="t"
        )
    out = io.StringIO()
    passport_demo(engine, Console(file=out, width=200), today, "demo")
    text = " ".join(out.getvalue().split())  # rich wraps long lines
    assert "RYJ trusts https://pasa.demo.nhs.uk (RXL)" in text
    # One employment credential per current assignment, identity, then any recorded checks.
    collected = r"collected \d+ credentials \(employment, (employment, )*identity(, \w+)*\)"
    assert re.search(collected, text)
    assert "Registrar" in text or "Foundation" in text or "Core Training" in text, text
    assert "RYJ verified it: pre-hire person" in text, text
    # A demo without a KEK gets one in the var dir, private, and the value is never printed.
    kek_file = tmp_path / "var" / "passport-kek"
    assert kek_file.stat().st_mode & 0o777 == 0o600
    assert kek_file.read_text().strip() not in text
    assert (tmp_path / "var" / "demo" / "wallet" / "holder-key.pem").exists()

    vs, o, a = s.passport_verifier_session, s.organisation, s.assignment
    with engine.connect() as conn:
        session = conn.execute(
            sa.select(vs.c.status, vs.c.person_id)
            .join(o, o.c.id == vs.c.organisation_id)
            .where(o.c.ods_code == RECEIVER)
        ).one()
        assert session.status == "accepted"
        states = dict(
            conn.execute(
                sa.select(s.lifecycle_state.c.scope, s.lifecycle_state.c.state).where(
                    s.lifecycle_state.c.person_id == session.person_id
                )
            ).all()
        )
        provisional = conn.execute(
            sa.select(a.c.assignment_number, a.c.start_date)
            .join(o, o.c.id == a.c.organisation_id)
            .where(o.c.ods_code == RECEIVER, a.c.person_id == session.person_id)
        ).one()
        planned = conn.scalar(
            sa.select(sa.func.count())
            .select_from(s.operation)
            .where(s.operation.c.person_id == session.person_id)
        )
    assert states[""] == "pre_hire"
    assert provisional.assignment_number.startswith("PP")
    assert provisional.start_date == today + dt.timedelta(days=5)
    assert planned and planned > 0
    assert f"{planned} provisioning operations planned" in text
