"""`pasa checks`: record and list pre-employment checks (the passport's check credentials)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from pasa import clock
from pasa.config import get_settings
from pasa.domain.errors import PasaError
from pasa.service import checks
from pasa.store.db import make_engine, migrate

checks_app = typer.Typer(
    help="Pre-employment checks: import a CSV of checks, list a person's checks.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


def _engine() -> Engine:
    engine = make_engine(get_settings().database_url)
    migrate(engine)
    return engine


@checks_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV of checks (columns: docs/passport.md).")],
) -> None:
    """Record every good row; list each bad row with its row number, column and reason."""
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PasaError(f"Cannot read {file} as UTF-8 text: {exc}.") from None
    report = checks.import_checks(
        _engine(),
        text,
        actor=os.environ.get("PASA_ACTOR") or f"cli:{getpass.getuser()}",
        now=clock.now(),
    )
    for problem in report.problems:
        err.print(f"row {problem.row}: {problem.field}: {problem.reason}", markup=False)
    console.print(f"{report.recorded} checks recorded, {len(report.problems)} rows rejected.")
    if report.problems:
        sys.exit(1)


@checks_app.command("list")
def list_checks(
    employee_number: Annotated[str, typer.Argument(help="The person's ESR employee number.")],
) -> None:
    """A person's current checks (superseded ones are kept as history, not shown)."""
    engine = _engine()
    today = clock.today(get_settings().timezone)
    with engine.connect() as conn:
        person_id, _ = checks.find_employee(conn, employee_number)
        found = checks.current_checks(conn, person_id)
    table = Table("check", "organisation", "checked on", "expires on", "state")
    for check in found:
        table.add_row(
            check.kind,
            check.organisation_code,
            check.checked_on.isoformat(),
            check.expires_on.isoformat() if check.expires_on else "-",
            "expired" if check.expired(today) else "current",
        )
    console.print(table)
