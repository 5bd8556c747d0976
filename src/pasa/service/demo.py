"""`pasa demo`: a synthetic 7,000-staff trust through a full joiner/mover/leaver cycle.

Day 1: the first full extract is imported, planned and provisioned. Day 2: an extract with
starters, movers, leavers and a name change. A truncated file trips the guard. Then the
August rotation of doctors in training is imported as one batch, previewed, approved by a
second person, executed on its date and reported on.
Everything runs on the embedded default (SQLite, in-process worker).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.engine import Engine

from pasa.audit.log import verify
from pasa.clock import parse_date
from pasa.config import get_settings
from pasa.domain.errors import ConfigurationError
from pasa.hr.esr_columns import COLUMNS, POSITION_COLUMNS
from pasa.hr.importer import import_extract, quarantine, reject_import
from pasa.hr.synthetic import first_wednesday, generate_rotation, generate_workforce
from pasa.policy.document import load_policy_file
from pasa.service import provisioning, rotation
from pasa.service.readiness import summarise
from pasa.store import schema as s
from pasa.store.db import make_engine, migrate
from pasa.store.policy_repo import save_policy

ORG = "RXL"
POLICY = Path("examples/policy.yaml")

ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


def _fmt(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


def evolve_extract(src: Path, dst: Path, *, as_of: dt.date, seed: int) -> dict[str, list[str]]:
    """Day-2 extract: 30 leavers, 40 starters, 25 movers and 3 name changes.

    Returns the assignment numbers affected per kind so the demo can explain them.
    """
    rng = random.Random(seed)
    with src.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))

    def started(r: dict[str, str]) -> bool:
        return parse_date(r["Assignment_Start_Date"]) < as_of

    ongoing = [
        r
        for r in rows
        if not r["Assignment_End_Date"] and r["Primary_Assignment"] == "Y" and started(r)
    ]
    picks = rng.sample(ongoing, 30 + 25 + 3)
    leavers, movers, renamed = picks[:30], picks[30:55], picks[55:]
    for r in leavers:
        r["Assignment_End_Date"] = _fmt(as_of)
    # A mover takes the position (and so department, site and codes) of another member of staff
    # in the same staff group, so every code stays valid.
    for r in movers:
        same_group = [
            o
            for o in ongoing
            if o["Staff_Group"] == r["Staff_Group"] and o["Department_Code"] != r["Department_Code"]
        ]
        if same_group:
            donor = rng.choice(same_group)
            for c in POSITION_COLUMNS:
                r[c] = donor[c]
    for r in renamed:
        r["Last_Name"] = rng.choice(["Okafor", "Nowak", "Fitzgerald", "Ahmed-Price", "O'Connor"])
    used = {r["Employee_Number"] for r in rows}
    starters: list[dict[str, str]] = []
    for template in rng.sample(ongoing, 40):
        number = str(rng.randint(30_000_000, 39_999_999))
        while number in used:
            number = str(rng.randint(30_000_000, 39_999_999))
        used.add(number)
        new = dict(template)
        first = rng.choice(["Amara", "Rhys", "Niamh", "Tomasz", "Priya", "Eilidh", "Kwame"])
        last = rng.choice(["Hughes", "Begum", "MacLeod", "Kowalski", "Mensah", "O'Brien"])
        new.update(
            {
                "Employee_Number": number,
                "Assignment_Number": number,
                "First_Name": first,
                "Last_Name": last,
                "Known_As": "",
                "Middle_Names": "",
                "NI_Number": f"JT{rng.randint(100000, 999999)}C",
                "Email_Address": f"{first}.{last}.{number[-4:]}@nhs.net".lower().replace("'", ""),
                "Assignment_Start_Date": _fmt(as_of + dt.timedelta(days=rng.randint(0, 14))),
                "Assignment_End_Date": "",
                "Registration_Body": "",
                "Registration_Number": "",
            }
        )
        starters.append(new)
    with dst.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows(starters)
    return {
        "leavers": [r["Assignment_Number"] for r in leavers],
        "movers": [r["Assignment_Number"] for r in movers],
        "renamed": [r["Assignment_Number"] for r in renamed],
        "starters": [r["Assignment_Number"] for r in starters],
    }


def truncate_extract(src: Path, dst: Path, keep: float) -> None:
    """The first ``keep`` share of an extract: what a failed transfer delivers."""
    with src.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    body = lines[1:]
    dst.write_text("".join([lines[0], *body[: int(len(body) * keep)]]), encoding="utf-8")


def _reset(url: str, var: Path) -> Engine:
    if url.startswith("sqlite"):
        db_path = Path(sa.engine.make_url(url).database or "")
        for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
            p.unlink(missing_ok=True)
        shutil.rmtree(var / "targets", ignore_errors=True)
    engine = make_engine(url)
    migrate(engine)
    with engine.connect() as conn:
        if conn.scalar(sa.select(sa.func.count()).select_from(s.person)):
            raise ConfigurationError(
                "the demo needs an empty database; PASA_DATABASE_URL already holds people"
            )
    return engine


def _provision(
    engine: Engine, console: Console, at: dt.date, progress: ProgressFactory, actor: str
) -> None:
    ctx = provisioning.compute_plan(engine, at)
    counts: dict[str, int] = {}
    for op in ctx.plan.operations:
        counts[op.kind.value] = counts.get(op.kind.value, 0) + 1
    console.print(
        f"  plan as at {at}: {len(ctx.plan.operations):,} operations "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
    )
    result = provisioning.apply(engine, at, actor=actor)
    with progress("Provisioning", result.operations) as update:
        report = provisioning.execute(engine, progress=update)
    console.print(f"  worker: {report}")


def run_demo(
    *,
    console: Console,
    staff: int,
    movers: int,
    progress: ProgressFactory,
    print_import: Callable[[Any, list[Any]], None],
    print_readiness: Callable[[Any], None],
    actor: str,
) -> None:
    settings = get_settings()
    var = settings.var_dir
    demo_dir = var / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    if not POLICY.exists():
        raise ConfigurationError(f"{POLICY} not found; run the demo from the repository root")
    engine = _reset(settings.database_url, var)
    day1 = dt.date.today()
    console.rule(f"[bold]PASA demo: a {staff:,}-staff trust ({ORG})")
    with engine.begin() as conn:
        stored = save_policy(conn, load_policy_file(POLICY), source=str(POLICY), actor=actor)
    console.print(
        f"Policy {POLICY}: {stored.targets} targets, {stored.roles} roles, {stored.rules} rules"
    )

    extract = demo_dir / "esr-day1.csv"
    with progress("Generating ESR extract", None) as update:
        generate_workforce(extract, staff=staff, org=ORG, seed=2026, as_of=day1, progress=update)
    console.rule(f"Day 1 ({day1}): first full ESR extract")
    with progress("Importing", None) as update:
        result = import_extract(engine, extract, actor=actor, as_of=day1, progress=update)
    print_import(result, quarantine(engine, result.import_id))
    _provision(engine, console, day1, progress, actor)
    print_readiness(summarise(engine, day1))

    day2 = day1 + dt.timedelta(days=1)
    console.rule(f"Day 2 ({day2}): starters, movers, leavers, a name change")
    extract2 = demo_dir / "esr-day2.csv"
    changed = evolve_extract(extract, extract2, as_of=day2, seed=7)
    result = import_extract(engine, extract2, actor=actor, as_of=day2)
    print_import(result, quarantine(engine, result.import_id))
    _provision(engine, console, day2, progress, actor)
    mover_view = provisioning.explain_person(engine, changed["movers"][0], day2, "doors")
    for _person, explanation in mover_view[:1]:
        console.print(f"[bold]A mover on {day2}, door access (pasa explain):[/]")
        why = explanation.render_text().split("\nNot granted by")[0]
        console.print(why, markup=False, highlight=False)

    day3 = day2 + dt.timedelta(days=1)
    console.rule(f"Day 3 ({day3}): leavers' last day was yesterday")
    _provision(engine, console, day3, progress, actor)
    leaver_view = provisioning.explain_person(engine, changed["leavers"][0], day3)
    for _person, explanation in leaver_view[:1]:
        console.print(f"[bold]A leaver on {day3}:[/]")
        console.print(explanation.render_text(), markup=False, highlight=False)

    console.rule("A truncated extract (a failed transfer) meets the guard")
    truncated = demo_dir / "esr-truncated.csv"
    truncate_extract(extract2, truncated, keep=0.4)
    held = import_extract(engine, truncated, actor=actor, as_of=day3)
    print_import(held, [])
    reject_import(engine, held.import_id, actor=actor, reason="truncated transfer (demo)")
    console.print("  Rejected: nobody was deprovisioned.")

    rotation_date = first_wednesday(day3.year + (1 if day3.month >= 8 else 0), 8)
    console.rule(f"August rotation ({rotation_date}): {movers:,} doctors in training move")
    rotation_file = demo_dir / "esr-rotation.csv"
    generate_rotation(extract2, rotation_file, movers=movers, rotation_date=rotation_date, seed=8)
    batch = rotation.import_batch(
        engine,
        rotation_file,
        name=f"August {rotation_date.year}",
        effective_date=rotation_date,
        actor=actor,
        today=day3,
    )
    console.print(f"  {batch.summary()}")
    batch_preview = rotation.preview(engine, batch.id)
    console.print(batch_preview.render_text(limit=3), markup=False, highlight=False)
    rotation.approve(engine, batch.id, actor="rota-coordinator")
    console.print(f"  approved by rota-coordinator (imported by {actor})")
    console.print(f"  {rotation.execute_due(engine, rotation_date, actor='scheduler')}")
    with progress("Provisioning the rotation", None) as update:
        provisioning.execute(engine, progress=update)
    console.print(rotation.report(engine, batch.id).render_text(limit=5), markup=False)
    _provision(engine, console, rotation_date, progress, actor)
    print_readiness(summarise(engine, rotation_date))

    _grant_demo_roles(engine, console, actor)

    with engine.connect() as conn:
        check = verify(conn)
    console.print(
        f"[green]Audit log intact:[/] {check.entries:,} entries"
        if check.ok
        else f"[red]Audit log problems: {len(check.problems)}[/]"
    )
    console.print(
        "\nTry: [bold]pasa explain <employee number> ad[/], [bold]pasa plan[/], "
        "[bold]pasa tasks list[/], [bold]pasa audit verify[/]. Target systems are SQLite files "
        f"under {var / 'targets'}."
    )


# The personas the demo's landing page signs in as (line manager and staff follow from HR).
DEMO_ROLES = (
    ("identity.team@demo.pasa.nhs.uk", "org_admin", None),
    ("pacs.owner@demo.pasa.nhs.uk", "system_owner", "pacs"),
    ("auditor@demo.pasa.nhs.uk", "auditor", None),
)


def _grant_demo_roles(engine: Engine, console: Console, actor: str) -> None:
    from pasa.service.access import grant_role

    for subject, role, target in DEMO_ROLES:
        grant_role(engine, subject, role, organisation=ORG, target=target, actor=actor)
    console.print(
        "Roles for the demo personas: "
        + ", ".join(f"{role} {subject}" for subject, role, _ in DEMO_ROLES)
    )
