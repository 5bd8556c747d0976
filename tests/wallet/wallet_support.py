"""Wallet test support (imported by name, like tests/passport/passport_support.py): a real
PASA issuer served by uvicorn on a free port, over a hub loaded from a synthetic
ESR extract, for the wallet to talk to over HTTP (sqlite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.hr.importer import import_extract
from pasa.hr.synthetic import generate_workforce
from pasa.passport.keys import KEK_ENV, KeyEncryptionKey
from pasa.service import checks
from pasa.store import schema as s
from pasa.web.app import create_app
from support.served import served


@dataclass(frozen=True)
class LiveIssuer:
    url: str
    engine: Engine
    kek: KeyEncryptionKey
    employee_number: str
    person_id: int


Serve = Callable[[Any], str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(app)`` serves an app until the test ends and returns its URL."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(served(app))


@pytest.fixture
def live_issuer(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve: Serve,
) -> LiveIssuer:
    monkeypatch.setenv(KEK_ENV, KeyEncryptionKey.generate())
    monkeypatch.delenv("PASA_PUBLIC_URL", raising=False)
    today = dt.date.today()
    generate_workforce(tmp_path / "esr.csv", staff=100, org="RXL", seed=3, as_of=today)
    import_extract(engine, tmp_path / "esr.csv", actor="tests", as_of=today)
    a = s.assignment
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(a.c.employee_number, a.c.person_id)
            .where(
                a.c.start_date <= today,
                a.c.end_date.is_(None),
                a.c.status == "Active Assignment",
                # Someone with no professional registration in ESR: the offer is then
                # exactly employment and identity, whichever database ordered the import.
                ~sa.exists().where(
                    s.person_identifier.c.person_id == a.c.person_id,
                    s.person_identifier.c.scheme.in_(sorted(checks._REGISTRATION_SCHEMES)),
                ),
            )
            .order_by(a.c.id)
            .limit(1)
        ).one()
    url = serve(create_app(engine))
    return LiveIssuer(url, engine, KeyEncryptionKey.from_env(), row.employee_number, row.person_id)
