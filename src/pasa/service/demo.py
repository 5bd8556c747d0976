"""`pasa demo`: a synthetic 7,000-staff trust through a full joiner/mover/leaver cycle.

History: ten weeks before today are simulated under a fixed clock (go-live with the baseline
extract, weekly extracts, 06:00 scheduler ticks, the identity team's manual tasks), so the
benefits dashboard has real times to show. Day 1 (today): catch-up provisioning. Day 2: an
extract with starters, movers, leavers and a name change. A truncated file trips the guard. Then the
August rotation of doctors in training is imported as one batch, previewed, approved by a
second person, executed on its date and reported on. Finally access requests wait for approval
and a doctor in training carries a Digital Staff Passport to a second organisation
(:mod:`pasa.service.demo_passport`). Everything runs on the embedded default (SQLite,
in-process worker).
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
from sqlalchemy.engine import Connection, Engine

from pasa.audit.log import verify
from pasa.clock import FixedClock, local_instant, parse_date, use_clock
from pasa.clock import now as clock_now
from pasa.clock import today as clock_today
from pasa.config import get_settings
from pasa.connectors.manual import complete_manual_task
from pasa.domain.errors import ConfigurationError
from pasa.hr.esr_columns import COLUMNS, POSITION_COLUMNS
from pasa.hr.importer import import_extract, quarantine, reject_import
from pasa.hr.synthetic import first_wednesday, generate_rotation, generate_workforce
from pasa.policy.document import load_policy_file
from pasa.service import benefits, provisioning, rotation
from pasa.service.readiness import summarise
from pasa.store import schema as s
from pasa.store.db import make_engine, migrate
from pasa.store.policy_repo import save_policy

ORG = "RXL"
POLICY = Path("examples/policy.yaml")

ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


def _fmt(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


def _weekday(day: dt.date, step: int) -> dt.date:
    """``day``, or the nearest working day in the direction of ``step`` (+1 or -1)."""
    while day.weekday() >= 5:
        day += dt.timedelta(days=step)
    return day


def evolve_extract(
    src: Path,
    dst: Path,
    *,
    as_of: dt.date,
    seed: int,
    leavers: int = 30,
    starters: int = 40,
    movers: int = 25,
    renamed: int = 3,
    lead_days: tuple[int, int] = (0, 14),
    late: int = 0,
    working_days: bool = False,
) -> dict[str, list[str]]:
    """The next extract: by default (day 2) 30 leavers, 40 starters, 25 movers and 3 name
    changes, starters starting 0-14 days after ``as_of``.

    The demo's history asks for its own numbers: starters keyed ``lead_days`` before their
    start (a working day when ``working_days``), the first ``late`` of them keyed after it.
    Returns the assignment numbers affected per kind so the demo can explain them.
    """
    n_leavers, n_starters, n_movers, n_renamed = leavers, starters, movers, renamed
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
    picks = rng.sample(ongoing, n_leavers + n_movers + n_renamed)
    leaving = picks[:n_leavers]
    moving = picks[n_leavers : n_leavers + n_movers]
    renaming = picks[n_leavers + n_movers :]
    for r in leaving:
        r["Assignment_End_Date"] = _fmt(as_of)
    # A mover takes the position (and so department, site and codes) of another member of staff
    # in the same staff group, so every code stays valid.
    for r in moving:
        same_group = [
            o
            for o in ongoing
            if o["Staff_Group"] == r["Staff_Group"] and o["Department_Code"] != r["Department_Code"]
        ]
        if same_group:
            donor = rng.choice(same_group)
            for c in POSITION_COLUMNS:
                r[c] = donor[c]
    for r in renaming:
        r["Last_Name"] = rng.choice(["Okafor", "Nowak", "Fitzgerald", "Ahmed-Price", "O'Connor"])
    used = {r["Employee_Number"] for r in rows}
    joining: list[dict[str, str]] = []
    for i, template in enumerate(rng.sample(ongoing, n_starters)):
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
                "Assignment_Start_Date": _fmt(
                    _start_date(rng, as_of, lead_days, late=i < late, working_days=working_days)
                ),
                "Assignment_End_Date": "",
                "Registration_Body": "",
                "Registration_Number": "",
            }
        )
        joining.append(new)
    with dst.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows(joining)
    return {
        "leavers": [r["Assignment_Number"] for r in leaving],
        "movers": [r["Assignment_Number"] for r in moving],
        "renamed": [r["Assignment_Number"] for r in renaming],
        "starters": [r["Assignment_Number"] for r in joining],
    }


def _start_date(
    rng: random.Random,
    as_of: dt.date,
    lead_days: tuple[int, int],
    *,
    late: bool,
    working_days: bool,
) -> dt.date:
    if late:  # keyed after the start: ESR was updated late
        day = as_of - dt.timedelta(days=rng.randint(1, 4))
        return _weekday(day, -1) if working_days else day
    day = as_of + dt.timedelta(days=rng.randint(*lead_days))
    return _weekday(day, 1) if working_days else day


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


# The demo's history: weeks of imports, scheduler ticks and manual work before today.
HISTORY_WEEKS = 10
TICK = dt.time(6, 0)  # the scheduler's morning run: before anyone arrives at 08:00
IMPORT_TIME = dt.time(10, 30)  # the weekly ESR extract lands on Tuesday mornings
TEAM_SESSIONS = (dt.time(10, 0), dt.time(14, 0))  # the identity team works its task queue
TEAM = "identity.team@demo.pasa.nhs.uk"


def _history_scope(conn: Connection, day: dt.date, since_import: int) -> list[int]:
    """Who a tick on ``day`` must plan for: people starting within the pre-hire window or just
    started, leaving now, or changed by an import since the last tick. Scoping keeps each
    simulated morning a fraction of a second instead of re-planning 7,000 people."""
    a, e = s.assignment, s.hr_event
    window = sa.or_(
        a.c.start_date.between(day - dt.timedelta(days=4), day + dt.timedelta(days=8)),
        a.c.end_date.between(day - dt.timedelta(days=4), day),
    )
    people = set(conn.scalars(sa.select(a.c.person_id).where(window)))
    people.update(
        p
        for p in conn.scalars(sa.select(e.c.person_id).where(e.c.import_id > since_import))
        if p is not None
    )
    return sorted(people)


def _team_session(engine: Engine, sim: FixedClock, rng: random.Random) -> int:
    """The identity team completes open manual tasks that have waited two hours or more.

    Each task has a 70% chance per session (so some wait a day or two), and one in eight is
    never done in the history (still open in the demo's exception queue)."""
    mt = s.manual_task
    cutoff = sim.now() - dt.timedelta(hours=2)
    with engine.connect() as conn:
        waiting = conn.scalars(
            sa.select(mt.c.id).where(mt.c.status == "open", mt.c.created_at <= cutoff)
        ).all()
    done = 0
    for task_id in waiting:
        if task_id % 8 == 0 or rng.random() > 0.7:
            continue
        sim.advance(dt.timedelta(minutes=rng.randint(2, 12)))  # a person's pace
        complete_manual_task(engine, task_id, actor=TEAM, completion={"note": "demo history"})
        done += 1
    return done


def simulate_history(
    engine: Engine,
    console: Console,
    progress: ProgressFactory,
    *,
    staff: int,
    today: dt.date,
    demo_dir: Path,
    actor: str,
) -> Path:
    """Simulate ``HISTORY_WEEKS`` weeks before ``today`` under a fixed clock: go-live with the
    baseline extract, then a weekly extract of starters (keyed 2-20 days ahead, a few late),
    leavers and movers, a scheduler tick at 06:00 on every working day, and the identity
    team working its manual tasks. Returns the last extract (the next one evolves from it)."""
    go_live = today - dt.timedelta(days=today.weekday() + 7 * HISTORY_WEEKS)  # a Monday
    rng = random.Random(2026)

    def scaled(low: int, high: int) -> int:
        """A weekly count for a 7,000-staff trust, scaled to the demo's size."""
        return max(1, round(rng.randint(low, high) * staff / 7_000))

    extract = demo_dir / "esr-baseline.csv"
    with progress("Generating ESR extract", None) as update:
        generate_workforce(extract, staff=staff, org=ORG, seed=2026, as_of=go_live, progress=update)
    sim = FixedClock(local_instant(go_live, dt.time(9, 0)))
    console.rule(f"Go-live ({go_live}): the baseline ESR extract, {HISTORY_WEEKS} weeks ago")
    with use_clock(sim):
        with progress("Importing", None) as update:
            result = import_extract(engine, extract, actor=actor, as_of=go_live, progress=update)
        last_import = planned_upto = result.import_id
        _provision(engine, console, go_live, progress, actor)
        console.print(
            "  Staff in the baseline extract were provisioned by hand before PASA: the "
            "dashboard does not count them as starters."
        )
        day = go_live + dt.timedelta(days=1)
        week_starters = 0
        while day < today:
            if day.weekday() < 5:
                sim.set(local_instant(day, TICK))
                with engine.connect() as conn:
                    scope = _history_scope(conn, day, planned_upto)
                planned_upto = last_import
                provisioning.apply(engine, day, actor="scheduler", person_ids=scope)
                provisioning.execute(engine)
                for i, session in enumerate(TEAM_SESSIONS):
                    sim.set(local_instant(day, session))
                    _team_session(engine, sim, rng)
                    if i == 0 and day.weekday() == 1:
                        sim.set(local_instant(day, IMPORT_TIME))
                        nxt = demo_dir / f"esr-{day:%Y%m%d}.csv"
                        changed = evolve_extract(
                            extract,
                            nxt,
                            as_of=day,
                            seed=day.toordinal(),
                            leavers=scaled(12, 22),
                            starters=scaled(25, 40),
                            movers=scaled(8, 15),
                            renamed=1,
                            lead_days=(2, 20),
                            late=rng.randint(1, 3),
                            working_days=True,
                        )
                        result = import_extract(engine, nxt, actor=actor, as_of=day)
                        extract, last_import = nxt, result.import_id
                        week_starters = len(changed["starters"])
            if day.weekday() == 4:
                _week_line(engine, console, day, week_starters, sim.now())
            day += dt.timedelta(days=1)
    return extract


def _week_line(
    engine: Engine, console: Console, friday: dt.date, imported: int, now: dt.datetime
) -> None:
    monday = friday - dt.timedelta(days=4)
    board = benefits.dashboard(engine, ORG, monday, friday, now=now)
    report = board.report if board else None
    ready = (
        f"{report.day_one_ready}/{report.day_one_eligible} ready by 08:00 on day one"
        if report and report.day_one_eligible
        else "nobody started"
    )
    console.print(f"  week of {monday}: {imported} starters imported; starting this week: {ready}")


def _headlines(engine: Engine, console: Console, today: dt.date) -> None:
    start, end = benefits.default_period(today)
    board = benefits.dashboard(engine, ORG, start, end, now=clock_now())
    if board is None:
        return
    r = board.report
    median = r.percentiles_hours.get(50)
    day_one = r.day_one_share
    console.rule(f"Benefits dashboard ({start} to {end}, /dashboard)")
    console.print(
        f"  starters {r.starters:,}; ready {r.ready:,}; "
        f"median time to access {'-' if median is None else f'{median:.1f} h'}; "
        f"ready by 08:00 on day one {'-' if day_one is None else f'{day_one:.0%}'} "
        f"({r.day_one_ready}/{r.day_one_eligible}); "
        f"operations automated {r.automated:,}, manual {r.manual:,}; "
        f"open exceptions {board.exceptions.total:,}"
    )


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
    day1 = clock_today()
    console.rule(f"[bold]PASA demo: a {staff:,}-staff trust ({ORG})")
    with engine.begin() as conn:
        stored = save_policy(conn, load_policy_file(POLICY), source=str(POLICY), actor=actor)
    console.print(
        f"Policy {POLICY}: {stored.targets} targets, {stored.roles} roles, {stored.rules} rules"
    )

    extract = simulate_history(
        engine, console, progress, staff=staff, today=day1, demo_dir=demo_dir, actor=actor
    )
    console.rule(f"Day 1 ({day1}): today, after {HISTORY_WEEKS} weeks of PASA")
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
    from pasa.service.access_requests import seed_demo_requests

    pending = seed_demo_requests(engine, clock_today(), clock_now())
    console.print(f"Access requests waiting for approval: {len(pending)} (see /requests)")

    from pasa.service.checks import synthetic_checks
    from pasa.service.demo_passport import passport_demo

    recorded = synthetic_checks(engine, ORG, clock_today(), seed=2026)
    console.print(
        f"Pre-employment checks recorded: {recorded:,} (right to work, DBS, occupational health, "
        "core skills training, training placements): the passport attests them"
    )
    passport_demo(engine, console, clock_today(), actor)

    _headlines(engine, console, day1)
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
# The identity team runs the platform (the demo also sets up RYJ, the passport's receiving
# organisation, and only a platform admin may change the deployment-wide policy).
DEMO_ROLES = (
    ("identity.team@demo.pasa.nhs.uk", "platform_admin", None),
    ("pacs.owner@demo.pasa.nhs.uk", "system_owner", "pacs"),
    ("auditor@demo.pasa.nhs.uk", "auditor", None),
)


def _grant_demo_roles(engine: Engine, console: Console, actor: str) -> None:
    from pasa.service.access import grant_role

    for subject, role, target in DEMO_ROLES:
        organisation = None if role == "platform_admin" else ORG
        grant_role(engine, subject, role, organisation=organisation, target=target, actor=actor)
    console.print(
        "Roles for the demo personas: "
        + ", ".join(f"{role} {subject}" for subject, role, _ in DEMO_ROLES)
    )
