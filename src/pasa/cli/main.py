"""`pasa`: every operator action from a terminal. Errors are one sentence, never a traceback."""

from __future__ import annotations

import datetime as dt
import gc
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine

from pasa import clock, logs
from pasa.cli.checks import checks_app
from pasa.cli.wallet import wallet_app
from pasa.config import get_settings
from pasa.domain.errors import PasaError
from pasa.store.db import make_engine, migrate

app = typer.Typer(
    help="PASA: Provisioning and Systems Access for NHS organisations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
hr_app = typer.Typer(
    help="HR sources: import ESR extracts, review quarantine, approve held imports."
)
policy_app = typer.Typer(help="Access policy: check and load the rules YAML.")
generate_app = typer.Typer(help="Synthetic data: an ESR-style workforce extract and rotations.")
audit_app = typer.Typer(help="Tamper-evident audit log.")
ops_app = typer.Typer(help="Operations ledger: list, retry and cancel operations.")
tasks_app = typer.Typer(help="Manual fulfilment tasks for the identity team.")
app.add_typer(hr_app, name="hr")
app.add_typer(policy_app, name="policy")
app.add_typer(generate_app, name="generate")
app.add_typer(audit_app, name="audit")
app.add_typer(ops_app, name="ops")
app.add_typer(tasks_app, name="tasks")
handover_app = typer.Typer(help="Day-one credential handover: activation codes for new starters.")
lifecycle_app = typer.Typer(help="Lifecycle states (pre_hire, active, ...) and their history.")
app.add_typer(handover_app, name="handover")
app.add_typer(lifecycle_app, name="lifecycle")
rotation_app = typer.Typer(help="Rotation batches: many movers on one date, approved once.")
app.add_typer(rotation_app, name="rotation")
app.add_typer(checks_app, name="checks")

console = Console()
err = Console(stderr=True)

AtOption = Annotated[
    str | None, typer.Option("--at", help="Evaluate as at this date (default: today, London).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def actor() -> str:
    return os.environ.get("PASA_ACTOR") or f"cli:{getpass.getuser()}"


def as_date(value: str | None) -> dt.date:
    if value is None:
        return clock.today(get_settings().timezone)
    try:
        return clock.parse_date(value)
    except ValueError as exc:
        raise PasaError(str(exc)) from exc


def open_engine(*, create: bool = False) -> Engine:
    settings = get_settings()
    engine = make_engine(settings.database_url)
    if create:
        migrate(engine)
    return engine


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Any]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int) -> None:
            bar.update(task, completed=done)

        yield update


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --- init, policy ---------------------------------------------------------------------------


@app.command()
def init() -> None:
    """Create or upgrade the database schema (idempotent)."""
    settings = get_settings()
    open_engine(create=True)
    console.print(f"[green]Database ready[/] at {settings.database_url}")


@policy_app.command("check")
def policy_check(file: Path) -> None:
    """Validate a policy YAML without loading it."""
    from pasa.policy.document import load_policy_file

    doc = load_policy_file(file)
    console.print(
        f"[green]{file} is valid:[/] {len(doc.targets)} targets, {len(doc.roles)} roles, "
        f"{len(doc.rules)} rules"
    )


@policy_app.command("load")
def policy_load(file: Path) -> None:
    """Validate a policy YAML and make it the active policy (audited)."""
    from pasa.policy.document import load_policy_file
    from pasa.store.policy_repo import save_policy

    doc = load_policy_file(file)
    engine = open_engine(create=True)
    with engine.begin() as conn:
        stored = save_policy(conn, doc, source=str(file), actor=actor())
    verb = "Loaded" if stored.changed else "Unchanged"
    console.print(
        f"[green]{verb}[/] policy version {stored.version_id} ({stored.sha256[:12]}): "
        f"{stored.targets} targets, {stored.roles} roles, {stored.rules} rules"
    )


# --- generate -------------------------------------------------------------------------------


@generate_app.command("workforce")
def generate_workforce(
    staff: Annotated[int, typer.Option(min=1, help="Number of people.")] = 7000,
    org: Annotated[str, typer.Option(help="ODS code of the trust.")] = "RXL",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same file).")] = 1,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Extract date.")] = None,
    out: Annotated[Path, typer.Option(help="Output CSV.")] = Path("var/esr-extract.csv"),
) -> None:
    """Write a realistic ESR-style full extract for a synthetic trust."""
    from pasa.hr.synthetic import generate_workforce as gen

    out.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar("Generating workforce", None) as update:
        summary = gen(
            out, staff=staff, org=org.upper(), seed=seed, as_of=as_of_date(as_of), progress=update
        )
    console.print(f"[green]Wrote[/] {out}: {summary}")


def as_of_date(value: str | None) -> dt.date:
    return as_date(value)


@generate_app.command("rotation")
def generate_rotation(
    source: Annotated[Path, typer.Option("--from", help="The current full extract.")],
    movers: Annotated[int, typer.Option(min=1, help="Number of people who move.")] = 800,
    date: Annotated[
        str | None, typer.Option(help="Rotation date (default first Wed of Aug).")
    ] = None,
    seed: Annotated[int, typer.Option()] = 1,
    out: Annotated[Path, typer.Option()] = Path("var/esr-rotation.csv"),
) -> None:
    """Write the extract as at an August-style rotation with MOVERS people moved."""
    from pasa.hr.synthetic import generate_rotation as gen
    from pasa.hr.synthetic import next_rotation_date

    if not source.exists():
        raise PasaError(f"{source} does not exist; generate a workforce first")
    when = as_date(date) if date else next_rotation_date(clock.today())
    summary = gen(source, out, movers=movers, rotation_date=when, seed=seed)
    console.print(f"[green]Wrote[/] {out}: {summary}")


# --- HR -------------------------------------------------------------------------------------


def _print_import(result: Any, problems: list[Any], limit: int = 20) -> None:
    table = Table(title=f"HR import {result.import_id}: {result.status}", show_header=False)
    table.add_row("rows accepted", f"{result.rows_accepted:,}")
    table.add_row("rows rejected", f"{result.rows_rejected:,}")
    table.add_row("rows with warnings", f"{getattr(result, 'rows_warned', 0):,}")
    table.add_row("new assignments", f"{result.events_new:,}")
    table.add_row("changed assignments", f"{result.events_changed:,}")
    table.add_row("ended assignments", f"{result.events_ended:,}")
    console.print(table)
    if problems:
        q = Table(title=f"Quarantine (first {min(limit, len(problems))} of {len(problems)})")
        for col in ("row", "severity", "field", "reason"):
            q.add_column(col)
        for p in problems[:limit]:
            q.add_row(str(p.row_number), p.severity, p.field or "", p.reason)
        console.print(q)
    guard = getattr(result, "guard_reason", None)
    if guard:
        console.print(f"[bold red]Held by the mass-termination guard:[/] {guard}")


@hr_app.command("import")
def hr_import(
    file: Path,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the extract is as at.")] = None,
    guard: Annotated[
        float | None, typer.Option(help="Share of active assignments an import may end.")
    ] = None,
) -> None:
    """Import an ESR full extract: validate, quarantine bad rows, detect changes, guard."""
    from pasa.hr.importer import import_extract, quarantine

    if not file.exists():
        raise PasaError(f"{file} does not exist")
    settings = get_settings()
    engine = open_engine(create=True)
    with progress_bar(f"Importing {file.name}", None) as update:
        result = import_extract(
            engine,
            file,
            actor=actor(),
            as_of=as_date(as_of),
            guard_threshold=settings.guard_threshold if guard is None else guard,
            progress=update,
        )
    _print_import(result, quarantine(engine, result.import_id))


@hr_app.command("approve")
def hr_approve(import_id: int) -> None:
    """Approve an import held by the guard: its terminations are applied."""
    from pasa.hr.importer import approve_import

    result = approve_import(open_engine(), import_id, actor=actor())
    console.print(f"[green]Approved[/] import {import_id}: {result.events_ended:,} ended")


@hr_app.command("reject")
def hr_reject(
    import_id: int, reason: Annotated[str, typer.Option(help="Why it is rejected.")]
) -> None:
    """Reject an import held by the guard: its terminations are discarded."""
    from pasa.hr.importer import reject_import

    reject_import(open_engine(), import_id, actor=actor(), reason=reason)
    console.print(f"Rejected import {import_id}; nothing was ended")


@hr_app.command("quarantine")
def hr_quarantine(import_id: int, as_json: JsonOption = False) -> None:
    """Every rejected or warned row of an import, with row number, field and reason."""
    from pasa.hr.importer import quarantine

    problems = quarantine(open_engine(), import_id)
    if as_json:
        emit_json([p.__dict__ if hasattr(p, "__dict__") else p._asdict() for p in problems])
        return
    table = Table(title=f"Quarantine of import {import_id}: {len(problems)} rows")
    for col in ("row", "severity", "field", "reason", "value"):
        table.add_column(col)
    for p in problems:
        table.add_row(str(p.row_number), p.severity, p.field or "", p.reason, p.value or "")
    console.print(table)


# --- rotation batches ------------------------------------------------------------------------


def _print_batch(batch: Any) -> None:
    console.print(batch.summary())
    for warning in batch.warnings[:10]:
        console.print(f"  warning: {warning}", markup=False, highlight=False)


@rotation_app.command("import")
def rotation_import(
    file: Path,
    name: Annotated[str, typer.Option(help="The batch's name, e.g. 'August 2027'.")],
    date: Annotated[str, typer.Option(help="The date the people move (YYYY-MM-DD).")],
) -> None:
    """Import a rotation file as one batch; only the rows that change are kept."""
    from pasa.service import rotation

    if not file.exists():
        raise PasaError(f"{file} does not exist")
    engine = open_engine(create=True)
    try:
        batch = rotation.import_batch(
            engine, file, name=name, effective_date=as_date(date), actor=actor()
        )
    except rotation.BatchRefused as exc:
        table = Table(title=f"{file.name}: rejected rows")
        for col in ("row", "field", "reason"):
            table.add_column(col)
        for p in exc.problems[:50]:
            table.add_row(str(p.row_number), p.field or "", p.reason)
        err.print(table)
        raise
    _print_batch(batch)
    console.print(f"Next: [bold]pasa rotation preview {batch.id}[/], then someone else approves")


@rotation_app.command("list")
def rotation_list(as_json: JsonOption = False) -> None:
    """Every rotation batch with its status."""
    from pasa.service import rotation

    batches = rotation.list_batches(open_engine())
    if as_json:
        emit_json([{k: getattr(b, k) for k in b.__slots__} for b in batches])
        return
    table = Table(title=f"Rotation batches: {len(batches)}")
    for col in ("id", "name", "date", "status", "version", "people", "rows", "by", "approved"):
        table.add_column(col)
    for b in batches:
        table.add_row(
            str(b.id), b.name, b.effective_date.isoformat(), b.status, str(b.version),
            f"{b.movers:,}", f"{b.rows:,}", b.created_by, b.approved_by or "",
        )  # fmt: skip
    console.print(table)


@rotation_app.command("preview")
def rotation_preview(
    batch_id: int,
    limit: Annotated[int, typer.Option(help="People to list.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """What the batch changes on its date: per target and per person. Writes nothing."""
    from pasa.service import rotation

    result = rotation.preview(open_engine(), batch_id)
    if as_json:
        emit_json(result.counts())
        return
    table = Table(
        title=f"Rotation batch {batch_id} '{result.name}' on {result.effective_date}: "
        f"{result.movers:,} people, {result.operations:,} operations"
    )
    for col in ("target", "accounts created", "grants added", "grants removed", "updates"):
        table.add_column(col)
    for key, c in sorted(result.by_target.items()):
        table.add_row(
            key, f"{c.accounts_created:,}", f"{c.grants_added:,}", f"{c.grants_removed:,}",
            f"{c.attribute_updates:,}",
        )  # fmt: skip
    console.print(table)
    if result.new_people:
        console.print(f"{result.new_people:,} new people are created on the date (not listed)")
    lines = result.people_lines(limit)
    if lines:
        console.print("\n".join(lines), markup=False, highlight=False)


@rotation_app.command("approve")
def rotation_approve(batch_id: int) -> None:
    """Approve a batch (once; not by whoever imported it)."""
    from pasa.service import rotation

    batch = rotation.approve(open_engine(), batch_id, actor=actor())
    console.print(
        f"[green]Approved[/] rotation batch {batch_id}; it executes on "
        f"{batch.effective_date.isoformat()}"
    )


@rotation_app.command("amend")
def rotation_amend(batch_id: int, file: Path) -> None:
    """Replace a batch's rows from a new file before its date (approval is needed again)."""
    from pasa.service import rotation

    if not file.exists():
        raise PasaError(f"{file} does not exist")
    _print_batch(rotation.amend(open_engine(), batch_id, file, actor=actor()))


@rotation_app.command("cancel")
def rotation_cancel(
    batch_id: int, reason: Annotated[str, typer.Option(help="Why it is cancelled.")]
) -> None:
    """Cancel a batch that has not been executed."""
    from pasa.service import rotation

    rotation.cancel(open_engine(), batch_id, actor=actor(), reason=reason)
    console.print(f"Cancelled rotation batch {batch_id}; nobody will be moved by it")


@rotation_app.command("report")
def rotation_report(batch_id: int, as_json: JsonOption = False) -> None:
    """How an executed batch went: operations per target and status, and the failures."""
    from pasa.service import rotation

    result = rotation.report(open_engine(), batch_id)
    if as_json:
        emit_json(result.counts())
        return
    console.print(result.render_text(), markup=False, highlight=False)


# --- plan, apply, worker, explain -----------------------------------------------------------


@app.command()
def plan(
    at: AtOption = None,
    as_json: JsonOption = False,
    person: Annotated[str | None, typer.Option(help="Only this person.")] = None,
    limit: Annotated[int, typer.Option(help="Operations to list (summary is always full).")] = 30,
) -> None:
    """Show what would change, and why. Writes nothing."""
    from pasa.service.provisioning import compute_plan
    from pasa.store.hub import find_person_ids

    engine = open_engine()
    when = as_date(at)
    ids = None
    if person:
        with engine.connect() as conn:
            ids = find_person_ids(conn, person)
        if not ids:
            raise PasaError(f"no person matches '{person}'")
    ctx = compute_plan(engine, when, ids)
    ops = ctx.plan.operations
    if as_json:
        emit_json(
            {
                "at": when.isoformat(),
                "people": ctx.people,
                "operations": [
                    {
                        "kind": o.kind.value,
                        "target": o.target,
                        "person_id": o.person_id,
                        "username": o.username,
                        "payload": o.payload,
                        "summary": o.summary,
                        "reasons": [r.describe() for r in o.reasons],
                    }
                    for o in ops
                ],
            }
        )
        return
    counts: dict[tuple[str, str], int] = {}
    for o in ops:
        counts[(o.target, o.kind.value)] = counts.get((o.target, o.kind.value), 0) + 1
    table = Table(title=f"Plan as at {when}: {len(ops):,} operations for {ctx.people:,} people")
    table.add_column("target")
    table.add_column("operation")
    table.add_column("count", justify="right")
    for (target, kind), n in sorted(counts.items()):
        table.add_row(target, kind, f"{n:,}")
    console.print(table)
    for o in ops[:limit]:
        sign = {
            "create_account": "+",
            "add_membership": "+",
            "enable": "+",
            "remove_membership": "-",
            "disable": "-",
            "delete": "-",
        }.get(o.kind.value, "~")
        why = "; ".join(r.describe() for r in o.reasons[:2])
        console.print(f" {sign} {o.summary}  [dim]({why})[/]")
    if len(ops) > limit:
        console.print(f"   … and {len(ops) - limit:,} more (use --json for all)")
    if not ops:
        console.print("[green]Nothing to do: every target matches the policy.[/]")


@app.command()
def apply(
    at: AtOption = None,
    execute: Annotated[bool, typer.Option(help="Run the in-process worker afterwards.")] = True,
) -> None:
    """Record the plan in the operations ledger and carry it out."""
    from pasa.service.provisioning import apply as do_apply

    engine = open_engine()
    result = do_apply(engine, as_date(at), actor=actor())
    console.print(f"Recorded {result.operations:,} operations (plan {result.plan_id[:8]})")
    if execute:
        _run_worker(engine)


def _run_worker(engine: Engine) -> None:
    from pasa.service.provisioning import execute as do_execute

    with progress_bar("Provisioning", None) as update:
        report = do_execute(engine, max_attempts=get_settings().max_attempts, progress=update)
    console.print(f"Worker: {report}")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run one tick in this process and exit.")] = False,
    every: Annotated[
        float,
        typer.Option(
            "--every",
            "--interval",
            min=1.0,
            help="Seconds between ticks (--in-process; procrastinate workers tick every minute).",
        ),
    ] = 300.0,
    plan_too: Annotated[
        bool,
        typer.Option(
            "--plan/--no-plan", help="Plan each tick before executing (--no-plan: execute only)."
        ),
    ] = True,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Tick in this process (the embedded default; always so on SQLite).",
        ),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", min=1, max=64, help="Jobs this procrastinate worker runs at once."
        ),
    ] = 1,
    name: Annotated[
        str | None,
        typer.Option(help="Worker name in logs and audit entries (default: host:pid)."),
    ] = None,
) -> None:
    """Scheduled evaluation: each tick plans today's changes and carries them out.

    On PostgreSQL this is a procrastinate worker: start one on each machine, all sharing the
    work through the database. On SQLite, or with --once or --in-process, ticks run here.
    """
    from pasa.service import scheduler
    from pasa.store.db import is_postgres

    engine = open_engine(create=True)
    if not (once or in_process) and is_postgres(engine):
        from pasa.engine import tasks

        label = name or tasks.worker_name()
        err.print(
            f"procrastinate worker {label}: concurrency {concurrency}, "
            f"{'plans and executes' if plan_too else 'executes only'}; Ctrl-C stops it"
        )
        tasks.run_worker(
            engine,
            get_settings().database_url,
            concurrency=concurrency,
            plan=plan_too,
            name=label,
        )
        return

    def show(report: scheduler.TickReport) -> None:
        console.print(
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%SZ} {report}",
            highlight=False,
            soft_wrap=True,
        )

    scheduler.run(
        engine,
        clock.SystemClock(),
        dt.timedelta(seconds=every),
        ticks=1 if once else None,
        on_tick=show,
        plan=plan_too,
    )


target_app = typer.Typer(help="Targets: list them, pause and resume their provisioning.")
app.add_typer(target_app, name="target")


@target_app.command("list")
def target_list(as_json: JsonOption = False) -> None:
    """Targets with their state, concurrency, pacing and pending operations."""
    import dataclasses

    from pasa.engine.tasks import list_targets

    states = list_targets(open_engine())
    if as_json:
        emit_json([dataclasses.asdict(s) for s in states])
        return
    table = Table(title="Targets")
    for col in ("key", "name", "connector", "state", "concurrency", "rate/min", "pending"):
        table.add_column(col)
    for s in states:
        table.add_row(
            s.key,
            s.name,
            s.connector,
            "[yellow]paused[/]" if s.paused else "running",
            "invalid" if s.concurrency is None else str(s.concurrency),
            "" if s.rate_per_minute is None else f"{s.rate_per_minute:g}",
            f"{s.pending:,}",
        )
    console.print(table)


@target_app.command("pause")
def target_pause(key: str) -> None:
    """Stop sending operations to a target (audited); they wait in the ledger."""
    from pasa.engine.tasks import set_paused

    changed = set_paused(open_engine(), key, True, actor=actor())
    console.print(f"Target {key} paused" if changed else f"Target {key} was already paused")


@target_app.command("resume")
def target_resume(key: str) -> None:
    """Send a paused target its waiting operations again (audited)."""
    from pasa.engine.tasks import set_paused

    changed = set_paused(open_engine(), key, False, actor=actor())
    console.print(f"Target {key} resumed" if changed else f"Target {key} was not paused")


token_app = typer.Typer(help="API tokens: create (shown once), list, revoke.")
app.add_typer(token_app, name="token")
role_app = typer.Typer(help="Roles granted to users: org_admin, system_owner, auditor, ...")
app.add_typer(role_app, name="role")


passport_app = typer.Typer(help="Digital Staff Passport: credential offers (OpenID4VCI).")
app.add_typer(passport_app, name="passport")
passport_keys_app = typer.Typer(help="Passport issuer signing keys: list and rotate.")
passport_app.add_typer(passport_keys_app, name="keys")
app.add_typer(wallet_app, name="wallet")


@passport_app.command("offer")
def passport_offer(
    person: Annotated[str, typer.Argument(help="The person's ESR employee number.")],
    email: Annotated[
        bool, typer.Option("--email", help="Email the code to their work address instead.")
    ] = False,
) -> None:
    """Print a credential offer URI (stdout) and its transaction code (for a second channel)."""
    from pasa.passport.keys import KeyEncryptionKey
    from pasa.service import notify
    from pasa.service import passport_issuer as pi
    from pasa.store import schema as s

    engine = open_engine(create=True)
    with engine.connect() as conn:
        person_id = pi.find_person(conn, person)
        address = conn.scalar(sa.select(s.person.c.email).where(s.person.c.id == person_id))
    if email and not address:
        raise PasaError(f"{person} has no email address in the HR record; omit --email")
    if email and not get_settings().smtp_host:
        raise PasaError("--email needs an SMTP server (PASA_SMTP_HOST); none is configured")
    kek = KeyEncryptionKey.from_env()
    offer = pi.create_offer(
        engine, person_id, issuer=pi.issuer_identifier(), actor=actor(), now=clock.now(), kek=kek
    )
    if email:
        with engine.begin() as conn:
            message = notify.tx_code(str(address), offer.tx_code, offer.expires_at)
            notify.queue_sealed(conn, message, kek)
        sys.stdout.write(f"{offer.uri}\n")
        err.print(f"Transaction code queued for email to {address}.")
        return
    sys.stdout.write(f"{offer.uri}\ntransaction code: {offer.tx_code}\n")
    err.print(
        f"Offer of {', '.join(offer.configuration_ids)} for {person}, single use, expires "
        f"{offer.expires_at:%Y-%m-%d %H:%M} UTC. Send the transaction code on another channel."
    )


passport_trust_app = typer.Typer(help="Issuers this organisation's verifier trusts, per type.")
passport_app.add_typer(passport_trust_app, name="trust")


@passport_app.command("request")
def passport_request(
    org: Annotated[str, typer.Option("--org", help="Your organisation's ODS code.")],
    given_name: Annotated[str, typer.Option("--given-name")],
    family_name: Annotated[str, typer.Option("--family-name")],
    start: Annotated[str, typer.Option("--start", help="Start date, YYYY-MM-DD.")],
    position: Annotated[str, typer.Option("--position", help="Intended position number.")],
    credential: Annotated[
        list[str] | None, typer.Option("--credential", help="employment, identity, ...")
    ] = None,
) -> None:
    """Ask an expected starter for their passport: prints the openid4vp:// request URI."""
    from pasa.service import passport_issuer as pi
    from pasa.service import passport_verifier as pv

    try:
        start_date = dt.date.fromisoformat(start)
    except ValueError:
        raise PasaError(f"--start {start!r} is not a date (YYYY-MM-DD)") from None
    new = pv.create_request(
        open_engine(create=True),
        organisation=org.upper(),
        given_name=given_name,
        family_name=family_name,
        start_date=start_date,
        position_number=position,
        query_ids=credential or ["employment", "identity"],
        actor=actor(),
        public_url=pi.issuer_identifier(),
        now=clock.now(),
    )
    sys.stdout.write(f"{new.uri}\n")
    err.print(f"Request {new.state}, single use, expires {new.expires_at:%Y-%m-%d %H:%M} UTC.")


@passport_app.command("link")
def passport_link(
    state: Annotated[str, typer.Argument(help="The accepted verification request's state.")],
    employee_number: Annotated[str, typer.Option("--employee-number", help="New ESR number.")],
    assignment_number: Annotated[
        str | None,
        typer.Option("--assignment-number", help="ESR assignment number (default: employee)."),
    ] = None,
) -> None:
    """Link a passport pre-hire person's provisional assignment to their ESR record."""
    from pasa.service import passport_verifier as pv

    pv.link_esr_record(
        open_engine(create=True),
        state,
        employee_number=employee_number,
        assignment_number=assignment_number or employee_number,
        actor=actor(),
        now=clock.now(),
    )
    err.print(f"Linked request {state} to ESR employee {employee_number.strip()}.")


@passport_trust_app.command("add")
def passport_trust_add(
    issuer: Annotated[str, typer.Argument(help="Issuer identifier (https URL, its iss).")],
    org: Annotated[str, typer.Option("--org", help="ODS code of the issuing organisation.")],
    types: Annotated[list[str], typer.Option("--type", help="employment, identity, ...")],
) -> None:
    """Trust ISSUER to issue the given credential types."""
    from pasa.service import passport_verifier as pv

    added = pv.add_trusted_issuer(
        open_engine(create=True),
        issuer,
        organisation_code=org,
        types=types,
        actor=actor(),
        now=clock.now(),
    )
    err.print(f"Trusted {added[0].issuer} ({added[0].organisation_code}) for {len(added)} type(s).")


@passport_trust_app.command("list")
def passport_trust_list(as_json: JsonOption = False) -> None:
    """The trust registry: issuer, organisation, credential type."""
    from pasa.service import passport_verifier as pv

    with open_engine(create=True).connect() as conn:
        rows = [
            {"issuer": e.issuer, "organisation": e.organisation_code, "vct": e.vct}
            for e in pv.trusted_issuers(conn)
        ]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Trusted passport issuers")
    for column in ("issuer", "organisation", "vct"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["issuer"], row["organisation"], row["vct"])
    console.print(table if rows else "No trusted issuers yet: pasa passport trust add.")


@passport_trust_app.command("remove")
def passport_trust_remove(
    issuer: Annotated[str, typer.Argument(help="Issuer identifier.")],
    types: Annotated[list[str] | None, typer.Option("--type", help="Only these types.")] = None,
) -> None:
    """Stop trusting ISSUER (for the given types, or altogether)."""
    from pasa.service import passport_verifier as pv

    n = pv.remove_trusted_issuer(
        open_engine(create=True), issuer, types=types or [], actor=actor(), now=clock.now()
    )
    err.print(f"Removed {n} registry entr{'y' if n == 1 else 'ies'} for {issuer}.")


@passport_keys_app.command("list")
def passport_keys_list(as_json: JsonOption = False) -> None:
    """The issuer's signing keys: created, retired, and published until (for verifiers)."""
    from pasa.service import passport_issuer as pi
    from pasa.store import schema as s

    engine = open_engine(create=True)
    k = s.passport_issuer_key
    now = clock.now()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(k).order_by(k.c.id.desc())).all()
        published = {j["kid"] for j in pi.published_jwks(conn, now)["keys"]}
    keys = [
        {
            "kid": r.kid,
            "created": r.created_at,
            "retired": r.retired_at,
            "published_until": "current" if r.retired_at is None else r.publish_until,
            "published_now": r.kid in published,
        }
        for r in rows
    ]
    if as_json:
        emit_json(keys)
        return
    table = Table(title="Passport issuer keys (newest first)")
    for column in ("kid", "created", "retired", "published until", "published now"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["kid"],
            f"{key['created']:%Y-%m-%d %H:%M}",
            f"{key['retired']:%Y-%m-%d %H:%M}" if key["retired"] else "-",
            str(key["published_until"] or "-")[:16],
            "yes" if key["published_now"] else "no",
        )
    console.print(table if keys else "No keys yet: the first is made when a credential is issued.")


@passport_keys_app.command("rotate")
def passport_keys_rotate() -> None:
    """Retire the current signing key and start a new one (audited). The old key stays
    published until the credentials it signed have expired."""
    from pasa.passport.keys import KeyEncryptionKey
    from pasa.service import passport_issuer as pi

    engine = open_engine(create=True)
    kid = pi.rotate_key(engine, actor=actor(), now=clock.now(), kek=KeyEncryptionKey.from_env())
    console.print(
        f"New signing key {kid}; the previous key stays published until its "
        "credentials expire (pasa passport keys list)."
    )


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option("--org", help="ODS code of the token's organisation.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="scim, api:read, api:write or hr:push (repeatable)."),
    ],
    name: Annotated[str, typer.Option(help="What uses the token (shown in lists).")] = "",
    days: Annotated[int, typer.Option(help="Days until it expires (1-366).")] = 90,
) -> None:
    """Print a new API token on stdout (the only time it is shown); details on stderr."""
    from pasa.service.access import create_token

    new = create_token(
        open_engine(create=True),
        organisation=org,
        scopes=scope,
        name=name or f"{'+'.join(scope)} token for {org.upper()}",
        actor=actor(),
        days=days,
    )
    row = new.row
    err.print(
        f"Token #{row.token_id} '{row.name}' for {row.organisation}, scopes "
        f"{', '.join(s.value for s in row.scopes)}, expires {row.expires_at:%Y-%m-%d %H:%M} UTC. "
        "Store it now: PASA keeps only its hash."
    )
    sys.stdout.write(new.secret + "\n")


@token_app.command("list")
def token_list(as_json: JsonOption = False) -> None:
    """API tokens (never the tokens themselves): prefix, scopes, state, last use."""
    from pasa.service.access import list_tokens

    now = clock.now()
    rows = list_tokens(open_engine())
    if as_json:
        emit_json(
            [
                {
                    "id": r.token_id,
                    "name": r.name,
                    "prefix": r.prefix,
                    "organisation": r.organisation,
                    "scopes": [x.value for x in r.scopes],
                    "state": r.state(now),
                    "expires_at": r.expires_at.isoformat(),
                    "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                }
                for r in rows
            ]
        )
        return
    table = Table(title="API tokens")
    for col in ("id", "name", "prefix", "org", "scopes", "state", "expires", "last used"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.token_id),
            r.name,
            r.prefix + "…",
            r.organisation,
            ", ".join(x.value for x in r.scopes),
            r.state(now),
            f"{r.expires_at:%Y-%m-%d}",
            f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke an API token at once (audited)."""
    from pasa.service.access import revoke_token

    row = revoke_token(open_engine(), token_id, actor=actor())
    console.print(f"Token #{row.token_id} '{row.name}' revoked")


@role_app.command("grant")
def role_grant(
    subject: Annotated[str, typer.Argument(help="Sign-in name, e.g. jane.smith@nhs.net.")],
    role: Annotated[str, typer.Argument(help="platform_admin, org_admin, system_owner, auditor.")],
    org: Annotated[
        str | None, typer.Option("--org", help="ODS code (not for platform_admin).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="The system a system_owner owns.")] = None,
) -> None:
    """Grant a role (audited). Line manager and staff follow from HR, never granted."""
    from pasa.service.access import grant_role

    row = grant_role(
        open_engine(create=True), subject, role, organisation=org, target=target, actor=actor()
    )
    console.print(f"Granted {row.describe()}")


@role_app.command("list")
def role_list(
    subject: Annotated[str | None, typer.Argument(help="Only this user.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Roles in force."""
    from pasa.service.access import list_bindings

    rows = list_bindings(open_engine(), subject)
    if as_json:
        emit_json(
            [
                {
                    "id": r.binding_id,
                    "subject": r.subject,
                    "role": r.role.value,
                    "organisation": r.organisation,
                    "target": r.target,
                    "granted_by": r.granted_by,
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        console.print(r.describe())
    if not rows:
        console.print("No roles granted")


@role_app.command("revoke")
def role_revoke(binding_id: int) -> None:
    """Revoke a granted role (audited)."""
    from pasa.service.access import revoke_role

    row = revoke_role(open_engine(), binding_id, actor=actor())
    console.print(f"Revoked {row.describe()}")


@app.command()
def explain(
    person: str,
    target: Annotated[str | None, typer.Argument(help="Only this target.")] = None,
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why does PERSON have (or not have) access on TARGET? Names rule, role and HR record."""
    from pasa.service.provisioning import explain_person

    results = explain_person(open_engine(), person, as_date(at), target)
    if as_json:
        emit_json([{"person": p.uid, **e.as_dict()} for p, e in results])
        return
    for p, e in results:
        console.rule(f"{p.display_name} ({p.uid})")
        console.print(e.render_text(), markup=False, highlight=False)


@app.command()
def readiness(at: AtOption = None, as_json: JsonOption = False) -> None:
    """Per target: how many people are ready, pending, waiting on a manual task, or failed."""
    from pasa.service.readiness import summarise

    summary = summarise(open_engine(), as_date(at))
    if as_json:
        emit_json(
            {
                "at": summary.at,
                "people": summary.people,
                "fully_ready": summary.people_fully_ready,
                "by_target": summary.by_target,
                "operations": summary.operations,
            }
        )
        return
    _print_readiness(summary)


def _print_readiness(summary: Any) -> None:
    table = Table(title=f"Readiness as at {summary.at}")
    for col in ("target", "ready", "pending", "manual task", "failed"):
        table.add_column(col, justify="right" if col != "target" else "left")
    for target, counts in summary.by_target.items():
        table.add_row(
            target,
            f"{counts['ready']:,}",
            f"{counts['pending']:,}",
            f"{counts['manual']:,}",
            f"{counts['failed']:,}",
        )
    console.print(table)
    share = summary.people_fully_ready / summary.people if summary.people else 1.0
    console.print(
        f"[bold]{summary.people_fully_ready:,} of {summary.people:,} people[/] with an active "
        f"assignment have every system ready ({share:.1%}); the rest wait on manual tasks, "
        "pending or failed operations."
    )


@app.command()
def reconcile(
    target: Annotated[str, typer.Argument(help="Target key, e.g. directory.")],
    correct: Annotated[
        bool | None,
        typer.Option(
            "--correct/--report",
            help="Re-apply PASA's recorded state, or only report (default: the target's "
            "'reconcile' setting, else report).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Read a target back: linked, drifted, unlinked, unmatched, orphan and missing accounts."""
    from pasa.engine.reconcile import reconcile as run_reconcile

    report = run_reconcile(open_engine(), target, actor=actor(), correct=correct)
    findings = [
        {
            "kind": f.kind.value,
            "username": f.username,
            "person_id": f.person_id,
            "details": f.details,
        }
        for f in report.findings
    ]
    if as_json:
        emit_json(
            {
                "run_id": report.run_id,
                "target": report.target,
                "policy": report.policy,
                "counts": report.counts,
                "corrections": report.corrections,
                "correction_errors": report.correction_errors,
                "findings": findings,
            }
        )
        return
    table = Table(title=f"Reconciliation of {report.target} (run {report.run_id}, {report.policy})")
    table.add_column("kind")
    table.add_column("accounts", justify="right")
    for kind, n in report.counts.items():
        table.add_row(kind, f"{n:,}")
    console.print(table)
    if findings:
        shown = Table(title=f"Findings (first {min(30, len(findings))} of {len(findings):,})")
        for col in ("kind", "username", "person", "details"):
            shown.add_column(col)
        for f in findings[:30]:
            shown.add_row(
                str(f["kind"]),
                str(f["username"]),
                "" if f["person_id"] is None else str(f["person_id"]),
                json.dumps(f["details"], default=str, sort_keys=True),
            )
        console.print(shown)
    if report.policy == "correct":
        console.print(
            f"{report.corrections:,} correction(s) sent; "
            f"{report.correction_errors:,} finding(s) could not be corrected."
        )


# --- audit ----------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(as_json: JsonOption = False) -> None:
    """Recompute the hash chain; exit 1 if any entry was edited, deleted or reordered."""
    from pasa.audit.log import verify

    with open_engine().connect() as conn:
        result = verify(conn)
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "entries": result.entries,
                "head": result.head,
                "problems": [
                    p.__dict__ if hasattr(p, "__dict__") else {"seq": p.seq, "problem": p.problem}
                    for p in result.problems
                ],
            }
        )
    elif result.ok:
        console.print(f"[green]Audit log intact:[/] {result.entries:,} entries, head {result.head}")
    else:
        err.print(f"[bold red]Audit log TAMPERED:[/] {len(result.problems)} problem(s)")
        for p in result.problems:
            err.print(f"  entry {p.seq}: {p.problem}")
    if not result.ok:
        raise typer.Exit(1)


# --- ops and tasks --------------------------------------------------------------------------


@ops_app.command("list")
def ops_list(
    status: Annotated[str | None, typer.Option(help="pending, parked, waiting_manual, ...")] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Operations in the ledger (newest first)."""
    from pasa.store import schema as s

    with open_engine().connect() as conn:
        q = (
            sa.select(
                s.operation.c.id,
                s.target.c.key,
                s.operation.c.kind,
                s.operation.c.status,
                s.operation.c.attempts,
                s.operation.c.summary,
                s.operation.c.last_error,
            )
            .select_from(s.operation.join(s.target, s.target.c.id == s.operation.c.target_id))
            .order_by(s.operation.c.id.desc())
            .limit(limit)
        )
        if status:
            q = q.where(s.operation.c.status == status)
        rows = conn.execute(q).all()
    table = Table(title="Operations")
    for col in ("id", "target", "kind", "status", "tries", "summary", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.id), r.key, r.kind, r.status, str(r.attempts), r.summary, r.last_error or ""
        )
    console.print(table)


@ops_app.command("retry")
def ops_retry(operation_id: int) -> None:
    """Put a parked operation back in the queue."""
    from pasa.engine.ledger import retry_operation

    with open_engine().begin() as conn:
        retry_operation(conn, operation_id, actor())
    console.print(f"Operation {operation_id} will be retried")


@ops_app.command("cancel")
def ops_cancel(operation_id: int) -> None:
    """Cancel a pending or parked operation (audited)."""
    from pasa.engine.ledger import cancel_operation

    with open_engine().begin() as conn:
        cancel_operation(conn, operation_id, actor())
    console.print(f"Operation {operation_id} cancelled")


@tasks_app.command("list")
def tasks_list() -> None:
    """Open manual tasks, oldest first, with their due time."""
    from pasa.store import schema as s

    with open_engine().connect() as conn:
        rows = conn.execute(
            sa.select(s.manual_task)
            .where(s.manual_task.c.status == "open")
            .order_by(s.manual_task.c.due_at)
        ).all()
    table = Table(title=f"Open manual tasks: {len(rows)}")
    for col in ("id", "assignee", "due", "instructions"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.assignee, f"{r.due_at:%Y-%m-%d %H:%M}", r.instructions)
    console.print(table)


@tasks_app.command("complete")
def tasks_complete(
    task_id: int,
    username: Annotated[str | None, typer.Option(help="Username created in the system.")] = None,
    note: Annotated[str | None, typer.Option(help="Anything worth recording.")] = None,
) -> None:
    """Record a manual task as done (feeds the recorded state)."""
    from pasa.connectors.manual import complete_manual_task

    completion = {k: v for k, v in {"username": username, "note": note}.items() if v}
    complete_manual_task(open_engine(), task_id, actor=actor(), completion=completion)
    console.print(f"Task {task_id} completed")


# --- credential handover and lifecycle ------------------------------------------------------


@handover_app.command("list")
def handover_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only waiting and revealed.")] = False,
) -> None:
    """Activation codes: who, which target, the line manager, status and expiry."""
    from pasa.service.handover import list_handovers

    rows = list_handovers(open_engine(), include_closed=not open_only)
    table = Table(title=f"Credential handovers: {len(rows)}")
    for col in ("id", "person", "target", "username", "manager", "status", "expires"):
        table.add_column(col)
    for r in rows:
        expires = f"{r.expires_at:%Y-%m-%d %H:%M} UTC" if r.expires_at else ""
        table.add_row(
            str(r.id), r.person, r.target, r.username, r.manager or "-", r.status, expires
        )
    console.print(table)


@handover_app.command("reveal")
def handover_reveal(
    handover_id: int,
    by: Annotated[
        str | None, typer.Option("--actor", help="Who reveals it (the line manager).")
    ] = None,
) -> None:
    """Show the one-time activation code ONCE (only its hash is kept)."""
    from pasa.service.handover import reveal

    revealed = reveal(open_engine(), handover_id, actor=by or actor(), clock=clock.SystemClock())
    console.print(
        f"Activation code for [bold]{revealed.username}[/] on {revealed.target} "
        f"(valid until {revealed.expires_at:%Y-%m-%d %H:%M} UTC):"
    )
    # Printed to the terminal only, never logged; it cannot be shown again.
    console.print(revealed.code, markup=False, highlight=False)
    console.print(
        f"[bold yellow]This code will not be shown again.[/] Give it to the new starter in "
        f"person; they choose their password at {revealed.activation_path}."
    )


@handover_app.command("revoke")
def handover_revoke(handover_id: int) -> None:
    """Withdraw an activation code; a fresh one is prepared for the same account."""
    from pasa.service.handover import revoke

    new_id = revoke(open_engine(), handover_id, actor=actor())
    console.print(f"Handover {handover_id} revoked; handover {new_id} is waiting to be revealed")


@lifecycle_app.command("show")
def lifecycle_show(person: str) -> None:
    """PERSON's lifecycle state, each assignment's, and every transition recorded."""
    from pasa.service.lifecycle import show

    for report in show(open_engine(), person):
        console.rule(f"{report.name} ({report.uid})")
        for scope in report.scopes:
            label = "person" if not scope.scope else f"assignment {scope.scope}"
            since = f" since {scope.since.isoformat()}" if scope.since else ""
            console.print(f"[bold]{label}[/]: {scope.state or 'not recorded yet'}{since}")
            for day, old, new in scope.transitions:
                console.print(f"    {day.isoformat()}  {old or '(first seen)'} -> {new}")


@lifecycle_app.command("record")
def lifecycle_record(at: AtOption = None) -> None:
    """Record everyone's lifecycle state as at a date (the scheduler does this every tick)."""
    from pasa.service.lifecycle import record_states

    summary = record_states(open_engine(), as_date(at), actor=actor())
    console.print(summary or "lifecycle: no transitions")


# --- demo and serve -------------------------------------------------------------------------


@app.command()
def demo(
    staff: Annotated[int, typer.Option(help="Size of the synthetic trust.")] = 7000,
    movers: Annotated[int, typer.Option(help="Doctors in training in the rotation.")] = 800,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Synthetic trust end to end: import, plan, apply, a JML cycle, readiness; then serve."""
    from pasa.service.demo import run_demo

    run_demo(
        console=console,
        staff=staff,
        movers=movers,
        progress=progress_bar,
        print_import=_print_import,
        print_readiness=_print_readiness,
        actor=actor(),
    )
    if serve_after:
        # The demo signs in as its personas on a plain-http localhost: dev sign-in on, cookies
        # not Secure. Never so for `pasa serve` unless configured.
        os.environ.setdefault("PASA_DEV_SIGNIN", "1")
        os.environ.setdefault("PASA_SESSION_COOKIE_SECURE", "false")
        serve(host="127.0.0.1", port=port)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the web application, the REST API (/api/v1), SCIM (/scim/v2) and /healthz."""
    import uvicorn

    from pasa.web.app import create_app

    web_app = create_app()
    # What start-up built (the app, templates, policy, SQLAlchemy metadata) lives for the whole
    # process: keeping it out of the collector's full passes halves the p95 of the heaviest
    # pages (bench/pages.py).
    gc.collect()
    gc.freeze()
    console.print(f"Serving on [bold]http://{host}:{port}/[/] (health: /healthz); Ctrl+C stops")
    uvicorn.run(web_app, host=host, port=port, log_level="warning")


# --- time-bound grants and what-if ------------------------------------------------------

grant_app = typer.Typer(help="Time-bound grants: approved requests the planner honours.")
app.add_typer(grant_app, name="grant")


def _one_person(engine: Engine, term: str) -> int:
    from pasa.store.hub import find_person_ids

    with engine.connect() as conn:
        ids = find_person_ids(conn, term)
    if not ids:
        raise PasaError(f"no person matches '{term}'")
    if len(ids) > 1:
        raise PasaError(f"'{term}' matches {len(ids)} people; use an employee number")
    return ids[0]


@grant_app.command("add")
def grant_add(
    person: str,
    target: Annotated[str, typer.Option(help="Target key from the policy.")],
    justification: Annotated[str, typer.Option(help="Why this person needs it.")],
    approved_by: Annotated[str, typer.Option(help="Who approved the request.")],
    group: Annotated[str | None, typer.Option(help="A group on the target.")] = None,
    app_role: Annotated[str | None, typer.Option(help="An application role.")] = None,
    door_zone: Annotated[str | None, typer.Option(help="A door zone.")] = None,
    valid_from: Annotated[
        str | None, typer.Option("--from", help="First day (default today).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last day (inclusive).")] = None,
) -> None:
    """Record an approved request: access on TARGET for PERSON between two dates."""
    from pasa.service.access_grants import add_grant

    chosen = [
        (k, v) for k, v in (("group", group), ("app_role", app_role), ("door_zone", door_zone)) if v
    ]
    if len(chosen) > 1:
        raise PasaError("name one of --group, --app-role, --door-zone (or none: just an account)")
    kind, value = chosen[0] if chosen else (None, "")
    engine = open_engine()
    grant_id = add_grant(
        engine,
        person_id=_one_person(engine, person),
        target=target,
        kind=kind,
        value=value,
        valid_from=as_date(valid_from),
        valid_to=as_date(until) if until else None,
        justification=justification,
        requested_by=actor(),
        approved_by=approved_by,
    )
    console.print(f"Grant #{grant_id} recorded; it takes effect at the next plan (`pasa apply`).")


@grant_app.command("list")
def grant_list(person: Annotated[str | None, typer.Argument()] = None) -> None:
    """Time-bound grants, for everyone or one person."""
    from pasa.service.access_grants import list_grants

    engine = open_engine()
    rows = list_grants(engine, _one_person(engine, person) if person else None)
    table = Table(title=f"{len(rows)} time-bound grants")
    for column in ("grant", "person", "status", "approved by", "justification"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.describe(), str(r.person_id), r.status, r.approved_by, r.justification)
    console.print(table)


@grant_app.command("revoke")
def grant_revoke(
    grant_id: int, reason: Annotated[str, typer.Option(help="Why it ends early.")] = ""
) -> None:
    """End a grant now; the access goes at the next plan unless something else justifies it."""
    from pasa.service.access_grants import revoke_grant

    revoke_grant(open_engine(), grant_id, actor=actor(), reason=reason)
    console.print(f"Grant #{grant_id} revoked.")


@app.command()
def whatif(
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="A changed policy YAML to try.")
    ] = None,
    at: AtOption = None,
    limit: Annotated[int, typer.Option(help="People to list.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Simulate a policy change against current data: who gains, who loses, which operations.

    Uses the same evaluation and planner as a real run and writes nothing.
    """
    from pasa.policy.document import load_policy_file
    from pasa.service.provisioning import what_if

    engine = open_engine()
    when = as_date(at)
    document = load_policy_file(policy_file) if policy_file else None
    result = what_if(engine, when, policy=document)
    names = {pid: p.display_name for pid, p in result.people.items()}
    if as_json:
        emit_json(
            {
                "at": when.isoformat(),
                "operations": [
                    {
                        "kind": o.kind.value,
                        "target": o.target,
                        "person_id": o.person_id,
                        "summary": o.summary,
                    }
                    for o in result.operations
                ],
                "gains": {str(k): [list(x) for x in v] for k, v in result.gains.items()},
                "losses": {str(k): [list(x) for x in v] for k, v in result.losses.items()},
            }
        )
        return
    console.print(
        f"What-if as at {when}: {len(result.operations):,} operations beyond today's plan; "
        f"{len(result.gains):,} people gain, {len(result.losses):,} lose"
    )
    for (target, kind), n in result.counts_by_target_kind().items():
        console.print(f"  {target:<12} {kind.value:<20} {n:>8,}")
    for title, changes in (("Gain", result.gains), ("Lose", result.losses)):
        for pid, items in list(changes.items())[:limit]:
            listed = ", ".join(f"{what} on {target}" for target, what in items)
            console.print(f"  {title}: {names.get(pid, pid)} (person {pid}): {listed}")
    if not result.operations:
        console.print("[green]No change: the policy gives everyone the same access.[/]")


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)
    try:
        app()
    except PasaError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        err.print(
            f"[bold red]error:[/] cannot use the database ({reason}); "
            "check PASA_DATABASE_URL and run `pasa init`"
        )
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last resort: one sentence, details on disk
        report = _write_crash_report(settings.var_dir)
        err.print(
            f"[bold red]error:[/] unexpected failure ({type(exc).__name__}: {exc}); "
            f"nothing further was changed; details in {report}"
        )
        sys.exit(2)


def _write_crash_report(var_dir: Path) -> Path:
    import traceback

    folder = var_dir / "log"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.log"
    path.write_text(traceback.format_exc(), encoding="utf-8")
    return path
