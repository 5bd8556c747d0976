"""Rotation batch end to end: import, preview, execute and the worker into eight targets.

A synthetic trust (PostgreSQL hub) is provisioned in full into eight ``sql_table`` targets
(SQLite files under ``var/bench/rotation``) — cheaply and untimed: ``provisioning.apply``
records the ledger and recorded state, one UPDATE marks those operations succeeded, and the
target tables are bulk-filled from PASA's recorded accounts and grants. Then the August
rotation goes through ``pasa.service.rotation`` step by step, each step in its own child
process (see :mod:`bench.common`), against peers measured in the same run:

- preview vs a bare in-memory ``evaluate`` + ``plan`` of the same people after the change;
- the worker vs plain ``executemany`` of the same changes into copies of the target tables
  (one transaction per target), and vs the overnight limit (midnight to 08:00).
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import WORK, StepResult, fresh_database, run_step

AS_OF = dt.date(2026, 7, 1)
WINDOW_HOURS = 8  # every operation done between midnight and 08:00 on the rotation day
FULL_MOVERS = 50_000  # the August rotation the limit is about
SETUP_CHUNK = 10_000  # people per untimed set-up apply
DEPT_BUCKETS = 24  # department groups per target: a move changes bucket 23 times in 24
# From cProfile of the worker step (``--rotation-profile``) on this machine; see the report.
WORKER_PROFILE = (
    "cProfile of this step at 300 movers (6,750 operations, 8.1 ms each under the profiler) "
    "puts 58% of its time waiting on PostgreSQL — about nine statements and a commit per "
    "operation, the commits alone 18% and the hash-chained audit append (advisory lock, read "
    "of the last hash, insert) 20% — only 8% in the SQLite connector's own calls, and most of "
    "the rest in SQLAlchemy building and compiling those statements."
)
START = "<!-- rotation:start -->"
END = "<!-- rotation:end -->"

# key, name, username template, users table, membership table, attributes (None: all),
# lifecycle
TARGETS: list[tuple[str, str, str, str, str, list[str] | None, dict[str, Any]]] = [
    (
        "directory",
        "Trust directory",
        "{first_initial}{last_name}",
        "users",
        "user_groups",
        None,
        {"prehire_days": 7, "retention_days": 90, "rename_on_name_change": True},
    ),
    (
        "epr",
        "Electronic Patient Record",
        "{first_name}.{last_name}",
        "users",
        "user_roles",
        [
            "first_name",
            "last_name",
            "display_name",
            "email",
            "employee_number",
            "department",
            "job_title",
        ],
        {"prehire_days": 7, "mover_overlap_days": 7, "retention_days": 365},
    ),
    (
        "doors",
        "Door access control",
        "{employee_number}",
        "cardholders",
        "cardholder_zones",
        ["first_name", "last_name", "display_name", "employee_number", "department"],
        {"prehire_days": 7, "retention_days": 30},
    ),
    (
        "pacs",
        "Radiology PACS",
        "{first_initial}{last_name}",
        "users",
        "user_roles",
        ["display_name", "email", "employee_number", "department", "job_title"],
        {},
    ),
    (
        "rostering",
        "e-Rostering",
        "{employee_number}",
        "staff",
        "staff_units",
        ["first_name", "last_name", "employee_number", "department", "job_title"],
        {"prehire_days": 7},
    ),
    (
        "email",
        "Email and calendar",
        "{first_name}.{last_name}",
        "mailboxes",
        "mailbox_lists",
        ["first_name", "last_name", "display_name", "email", "department"],
        {"prehire_days": 7, "retention_days": 30},
    ),
    (
        "learning",
        "Learning management",
        "{employee_number}",
        "learners",
        "learner_curricula",
        ["first_name", "last_name", "email", "employee_number", "department", "job_title"],
        {},
    ),
    (
        "pharmacy",
        "Pharmacy system",
        "{first_initial}{last_name}",
        "users",
        "user_roles",
        ["display_name", "employee_number", "department", "job_title"],
        {"mover_overlap_days": 7},
    ),
]
KEYS = [t[0] for t in TARGETS]


def _dir(movers: int) -> Path:
    return WORK / f"rotation-{movers}"


def sizes(movers: int, staff: int | None) -> int:
    """Staff in the trust: about 2.5 x the movers, at least 7,000."""
    return staff or max(7_000, math.ceil(2.5 * movers))


# --- the bench policy ------------------------------------------------------------------------


def write_policy(extract: Path, workdir: Path) -> dict[str, Any]:
    """Eight sql_table targets; department, staff-group and site rules, so a mover changes
    groups on every target. Returns counts."""
    import csv

    from pasa.hr.esr_columns import COLUMNS
    from pasa.policy.document import load_policy_file

    i_dept, i_group, i_site = (
        COLUMNS.index("Department_Code"),
        COLUMNS.index("Staff_Group"),
        COLUMNS.index("Location_Code"),
    )
    depts, groups, sites = set(), set(), set()
    with extract.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            depts.add(row[i_dept])
            groups.add(row[i_group])
            sites.add(row[i_site])
    targets = []
    for key, name, template, users, members, attributes, lifecycle in TARGETS:
        spec: dict[str, Any] = {
            "key": key,
            "name": name,
            "connector": "sql_table",
            "username_template": template,
            "username_max_length": 30,
            "settings": {
                "url": f"sqlite:///{workdir / 'targets' / (key + '.db')}",
                "table": users,
                "membership_table": members,
            },
            "lifecycle": lifecycle,
        }
        if attributes is not None:
            spec["attributes"] = attributes
        targets.append(spec)
    roles: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    buckets: dict[int, list[str]] = collections.defaultdict(list)
    for n, code in enumerate(sorted(depts)):
        buckets[n % DEPT_BUCKETS].append(code)
    for b, codes in sorted(buckets.items()):
        ents = [{"target": k, "groups": [f"{k}-unit-{b:02d}"]} for k in KEYS if k != "doors"]
        ents.append({"target": "doors", "door_zones": [f"dept-zone-{b:02d}"]})
        roles.append({"key": f"unit-{b:02d}", "description": f"units {b}", "entitlements": ents})
        rules.append(
            {
                "key": f"unit-{b:02d}",
                "description": f"departments in bucket {b}",
                "when": {"department_code": {"in": codes}},
                "grant": [f"unit-{b:02d}"],
            }
        )
    for g in sorted(groups):
        ents = [
            {"target": k, "app_roles": [f"sg-{g}"]}
            for k in ("epr", "pacs", "rostering", "learning", "pharmacy")
        ]
        ents.append({"target": "directory", "groups": [f"GG-Staff-Group-{g}"]})
        roles.append({"key": f"sg-{g}", "description": f"staff group {g}", "entitlements": ents})
        rules.append(
            {
                "key": f"sg-{g}",
                "description": f"staff group {g}",
                "when": {"staff_group": g},
                "grant": [f"sg-{g}"],
            }
        )
    for site in sorted(sites):
        roles.append(
            {
                "key": f"site-{site}",
                "description": f"site {site}",
                "entitlements": [
                    {"target": "doors", "door_zones": [f"site-{site}"]},
                    {"target": "email", "groups": [f"site-list-{site}"]},
                ],
            }
        )
        rules.append(
            {
                "key": f"site-{site}",
                "description": f"located at {site}",
                "when": {"site_code": site},
                "grant": [f"site-{site}"],
            }
        )
    policy = {
        "version": 1,
        "targets": targets,
        "birthright": ["directory", "email"],
        "roles": roles,
        "rules": rules,
    }
    path = workdir / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    load_policy_file(path)  # fail early on a bad bench policy
    return {"path": str(path), "departments": len(depts), "rules": len(rules)}


# --- untimed set-up (children) ----------------------------------------------------------------


def setup_trust(
    db_url: str, extract: str, policy: str, workdir: str, at: dt.date
) -> dict[str, Any]:
    """Import the trust, load the policy, provision everyone (ledger marked succeeded, target
    tables bulk-filled from the recorded state). Untimed."""
    import sqlalchemy as sa

    from pasa.connectors.sqltable import ATTRIBUTE_NAMES, SqlTableConnector, SqlTableSettings
    from pasa.hr.importer import import_extract
    from pasa.policy.document import load_policy_file
    from pasa.service import provisioning
    from pasa.store import schema as s
    from pasa.store.db import make_engine
    from pasa.store.policy_repo import save_policy

    t0 = time.perf_counter()
    engine = make_engine(db_url)
    imported = import_extract(engine, extract, actor="bench-hr", as_of=AS_OF)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        save_policy(conn, load_policy_file(Path(policy)), source=policy, actor="bench")
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(s.person.c.id).order_by(s.person.c.id)).scalars())
    setup_operations = 0
    for start in range(0, len(ids), SETUP_CHUNK):  # bounded memory on a big trust
        chunk = ids[start : start + SETUP_CHUNK]
        setup_operations += provisioning.apply(
            engine, at, actor="bench-setup", person_ids=chunk
        ).operations
    t2 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE operation SET status = 'succeeded', attempts = 1, completed_at = now(), "
                "not_before = NULL WHERE status <> 'succeeded'"
            )
        )
        conn.execute(sa.text("UPDATE account SET external_id = 'bench-' || id"))
    targets_dir = Path(workdir) / "targets"
    shutil.rmtree(targets_dir, ignore_errors=True)
    targets_dir.mkdir(parents=True)
    accounts = grants = 0
    with engine.connect() as conn:
        for spec in load_policy_file(Path(policy)).targets:
            connector = SqlTableConnector(SqlTableSettings(**spec.settings), name=spec.key)
            connector.users.metadata.create_all(connector.engine)
            connector.close()
            tid = conn.execute(sa.select(s.target.c.id).where(s.target.c.key == spec.key))
            target_id = tid.scalar_one()
            a, g = s.account, s.account_grant
            user_rows = []
            for r in conn.execute(
                sa.select(a.c.username, a.c.external_id, a.c.status, a.c.attributes).where(
                    a.c.target_id == target_id, a.c.status != "deleted"
                )
            ):
                attrs = r.attributes or {}
                user_rows.append(
                    (
                        r.username,
                        r.external_id,
                        r.status == "enabled",
                        *(_text(attrs.get(n)) for n in ATTRIBUTE_NAMES),
                    )
                )
            member_rows = list(
                conn.execute(
                    sa.select(a.c.username, g.c.kind, g.c.value)
                    .select_from(g.join(a, a.c.id == g.c.account_id))
                    .where(a.c.target_id == target_id, a.c.status != "deleted")
                ).tuples()
            )
            settings = spec.settings
            cols = ", ".join(("username", "external_id", "enabled", *ATTRIBUTE_NAMES))
            marks = ", ".join("?" * (3 + len(ATTRIBUTE_NAMES)))
            db = sqlite3.connect(_sqlite_path(settings["url"]))
            with db:
                db.executemany(
                    f"INSERT INTO {settings['table']} ({cols}) VALUES ({marks})", user_rows
                )
                db.executemany(
                    f"INSERT INTO {settings['membership_table']} (username, kind, value) "
                    "VALUES (?, ?, ?)",
                    member_rows,
                )
            db.close()
            accounts += len(user_rows)
            grants += len(member_rows)
    engine.dispose()
    return {
        "rows": imported.rows_accepted,
        "import_s": round(t1 - t0, 1),
        "apply_s": round(t2 - t1, 1),
        "setup_operations": setup_operations,
        "accounts": accounts,
        "grants": grants,
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def copy_targets(workdir: str) -> dict[str, Any]:
    """Untimed: consistent copies of the target databases for the raw baseline."""
    src, dst = Path(workdir) / "targets", Path(workdir) / "raw"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in sorted(src.glob("*.db")):
        a, b = sqlite3.connect(f), sqlite3.connect(dst / f.name)
        a.backup(b)
        a.close()
        b.close()
    return {"copied": len(list(dst.glob("*.db")))}


# --- timed steps (children) ---------------------------------------------------------------


def _engine(db_url: str) -> Any:
    from pasa.store.db import make_engine

    return make_engine(db_url)


def step_import(db_url: str, path: str, when: dt.date) -> dict[str, Any]:
    from pasa.service import rotation

    engine = _engine(db_url)
    started = time.perf_counter()
    batch = rotation.import_batch(
        engine,
        path,
        name=f"August rotation {when.year}",
        effective_date=when,
        actor="bench-importer",
        today=when - dt.timedelta(days=1),
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "batch_id": batch.id, "rows": batch.rows, "movers": batch.movers}


def step_preview(db_url: str, batch_id: int) -> dict[str, Any]:
    from pasa.service import rotation

    engine = _engine(db_url)
    started = time.perf_counter()
    result = rotation.preview(engine, batch_id)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": seconds,
        "operations": result.operations,
        "people_changed": len(result.people),
        "by_target": {k: v.total for k, v in result.by_target.items()},
    }


def bare_plan(db_url: str, batch_id: int) -> dict[str, Any]:
    """Peer of the preview: evaluate + plan of the batch's people after the change, in
    memory; loading the people, recorded state and the overlay is untimed."""
    from pasa.planning.plan import plan
    from pasa.policy.evaluate import compile_policy, evaluate
    from pasa.service import provisioning, rotation
    from pasa.store.policy_repo import load_active_policy

    engine = _engine(db_url)
    with engine.connect() as conn:
        row = rotation._load(conn, batch_id)
        rows = rotation._rows_of(row.rows_csv, row.effective_date)
        by_person, _ = rotation._people_of(conn, rows)
        document = load_active_policy(conn)
        inputs = provisioning._load(conn, document, row.effective_date, sorted(by_person))
    engine.dispose()
    people = rotation.overlay_for(by_person, row.effective_date)(list(inputs.people))
    compiled = compile_policy(document)
    started = time.perf_counter()
    desired = evaluate(people, compiled, row.effective_date, inputs.requests)
    result = plan(desired, inputs.recorded, compiled.targets, inputs.taken)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "people": len(people), "operations": len(result.operations)}


def step_execute(db_url: str, batch_id: int, when: dt.date) -> dict[str, Any]:
    import sqlalchemy as sa

    from pasa.service import rotation
    from pasa.store import schema as s

    engine = _engine(db_url)
    started = time.perf_counter()
    rotation.approve(engine, batch_id, actor="bench-approver")
    approved = time.perf_counter()
    message = rotation.execute_due(engine, when, actor="bench-scheduler")
    finished = time.perf_counter()
    plan_id = rotation.get_batch(engine, batch_id).plan_id
    with engine.connect() as conn:
        ops = conn.execute(
            sa.select(sa.func.count()).where(s.operation.c.plan_id == plan_id)
        ).scalar_one()
        due_later = conn.execute(
            sa.select(sa.func.count()).where(
                s.operation.c.plan_id == plan_id, s.operation.c.not_before.is_not(None)
            )
        ).scalar_one()
    engine.dispose()
    return {
        "seconds": finished - approved,
        "approve_s": round(approved - started, 3),
        "operations": int(ops),
        "not_before_set": int(due_later),
        "plan_id": plan_id,
        "message": message or "",
    }


def step_worker(
    db_url: str, plan_id: str, profile: str | None = None, sample: int | None = None
) -> dict[str, Any]:
    """``provisioning.execute``: every pending operation into the eight targets; or, with
    ``sample``, the first ``sample`` operations of each target, one target at a time (the
    worker's own ``limit``), timed per target."""
    import sqlalchemy as sa

    from pasa.engine.worker import WorkerReport, run_pending
    from pasa.service import provisioning
    from pasa.store import schema as s

    engine = _engine(db_url)
    timed_per_target: dict[str, float] = {}
    started = time.perf_counter()
    if sample:
        connectors = provisioning.connectors_for(engine)
        report = WorkerReport()
        for key in KEYS:
            t0 = time.perf_counter()
            part = run_pending(engine, {key: connectors[key]}, limit=sample)
            timed_per_target[key] = time.perf_counter() - t0
            report.succeeded += part.succeeded
            report.parked += part.parked
            report.retried += part.retried
        for connector in connectors.values():
            connector.close()
    elif profile:
        import cProfile

        profiler = cProfile.Profile()
        report = profiler.runcall(provisioning.execute, engine)
        profiler.dump_stats(profile)
    else:
        report = provisioning.execute(engine)
    seconds = time.perf_counter() - started
    op, t = s.operation, s.target
    per_target: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for key, status, n, first, last in conn.execute(
            sa.select(
                t.c.key,
                op.c.status,
                sa.func.count(),
                sa.func.min(op.c.completed_at),
                sa.func.max(op.c.completed_at),
            )
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .where(op.c.plan_id == plan_id)
            .group_by(t.c.key, op.c.status)
        ):
            entry = per_target.setdefault(key, {"operations": 0, "succeeded": 0, "span_s": 0.0})
            entry["operations"] += int(n)
            if status == "succeeded":
                entry["succeeded"] += int(n)
                if key in timed_per_target:
                    entry["span_s"] = timed_per_target[key]
                elif first is not None and last is not None:
                    entry["span_s"] = (last - first).total_seconds()
    engine.dispose()
    return {
        "seconds": seconds,
        "succeeded": report.succeeded,
        "parked": report.parked,
        "retried": report.retried,
        "blocked": report.blocked,
        "deferred": report.deferred,
        "per_target": per_target,
        "sample": sample or 0,
    }


def raw_baseline(db_url: str, plan_id: str, policy: str, workdir: str) -> dict[str, Any]:
    """The floor: the same changes by plain ``executemany`` into copies of the target tables,
    one transaction per target. Reading the ledger is untimed."""
    import sqlalchemy as sa

    from pasa.connectors.base import create_attributes, membership_of, update_changes
    from pasa.connectors.sqltable import ATTRIBUTE_NAMES
    from pasa.policy.document import load_policy_file
    from pasa.store import schema as s

    engine = _engine(db_url)
    op, t = s.operation, s.target
    by_target: dict[str, list[tuple[str, str, dict[str, Any]]]] = collections.defaultdict(list)
    with engine.connect() as conn:
        for key, kind, username, payload in conn.execute(
            sa.select(t.c.key, op.c.kind, op.c.username, op.c.payload)
            .select_from(op.join(t, t.c.id == op.c.target_id))
            .where(op.c.plan_id == plan_id)
            .order_by(op.c.id)
        ):
            by_target[key].append((kind, username, dict(payload or {})))
    engine.dispose()
    specs = {spec.key: spec.settings for spec in load_policy_file(Path(policy)).targets}
    per_target: dict[str, dict[str, Any]] = {}
    total = 0.0
    for key, ops in sorted(by_target.items()):
        settings = specs[key]
        users, members = settings["table"], settings["membership_table"]
        db = sqlite3.connect(Path(workdir) / "raw" / f"{key}.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        creates: list[tuple[Any, ...]] = []
        updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = collections.defaultdict(list)
        status: list[tuple[bool, str]] = []
        adds: list[tuple[str, str, str]] = []
        removes: list[tuple[str, str, str]] = []
        deletes: list[tuple[str]] = []
        for kind, username, payload in ops:
            if kind == "create_account":
                a = create_attributes(payload)
                enabled = payload.get("enabled", True) is not False
                creates.append(
                    (username, f"raw-{username}", enabled, *(a.get(n) for n in ATTRIBUTE_NAMES))
                )
            elif kind == "update_attributes":
                changes = update_changes(payload)
                names = tuple(sorted(changes))
                updates[names].append((*(changes[n] for n in names), username))
            elif kind in ("enable", "disable"):
                status.append((kind == "enable", username))
            elif kind == "add_membership":
                adds.append((username, *membership_of(payload)))
            elif kind == "remove_membership":
                removes.append((username, *membership_of(payload)))
            elif kind == "delete":
                deletes.append((username,))
        with db:
            cols = ", ".join(("username", "external_id", "enabled", *ATTRIBUTE_NAMES))
            marks = ", ".join("?" * (3 + len(ATTRIBUTE_NAMES)))
            db.executemany(f"INSERT INTO {users} ({cols}) VALUES ({marks})", creates)
            for names, rows in updates.items():
                sets = ", ".join(f"{n} = ?" for n in names)
                db.executemany(f"UPDATE {users} SET {sets} WHERE username = ?", rows)
            db.executemany(f"UPDATE {users} SET enabled = ? WHERE username = ?", status)
            db.executemany(
                f"INSERT OR IGNORE INTO {members} (username, kind, value) VALUES (?, ?, ?)", adds
            )
            db.executemany(
                f"DELETE FROM {members} WHERE username = ? AND kind = ? AND value = ?", removes
            )
            db.executemany(f"DELETE FROM {members} WHERE username = ?", deletes)
            db.executemany(f"DELETE FROM {users} WHERE username = ?", deletes)
        seconds = time.perf_counter() - started
        db.close()
        total += seconds
        per_target[key] = {"operations": len(ops), "seconds": seconds}
    return {
        "seconds": total,
        "operations": sum(len(v) for v in by_target.values()),
        "per_target": per_target,
    }


def step_report(db_url: str, batch_id: int) -> dict[str, Any]:
    from pasa.service import rotation

    engine = _engine(db_url)
    started = time.perf_counter()
    result = rotation.report(engine, batch_id)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": seconds,
        "operations": result.operations,
        "people": result.people,
        "people_done": result.people_done,
        "failures": len(result.failures),
    }


# --- the section -----------------------------------------------------------------------------


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else ""


def section(
    postgres_url: str | None,
    movers: int,
    staff: int | None,
    seed: int,
    timeout: float,
    command: str,
    *,
    keep_db: bool = False,
    profile: bool = False,
    worker_sample: int | None = None,
) -> list[str]:
    """Run the rotation benchmark; the Markdown section with its markers."""
    from bench import hr_import, planning
    from pasa.hr.synthetic import first_wednesday

    title = f"## Rotation batch: {movers:,} movers across {len(TARGETS)} targets"
    out = [START, title, ""]
    if not postgres_url:
        print("Rotation: skipped (set PASA_BENCH_POSTGRES_URL or use make bench)")
        return [*out, "Not run: no PostgreSQL URL (PASA_BENCH_POSTGRES_URL).", "", END, ""]
    when = first_wednesday(AS_OF.year, 8)
    day_before = when - dt.timedelta(days=1)
    n_staff = sizes(movers, staff)
    workdir = _dir(movers)
    workdir.mkdir(parents=True, exist_ok=True)
    extract = WORK / f"extract-{n_staff}-{seed}.csv"
    rotated = workdir / f"rotation-{n_staff}-{movers}-{seed}.csv"
    started_at = dt.datetime.now(dt.UTC)
    print(f"Rotation: {movers:,} movers out of {n_staff:,} staff on {when}, 8 sql_table targets")
    run_step(
        "generate workforce (untimed)",
        hr_import.generate_extract,
        path=str(extract),
        staff=n_staff,
        seed=seed,
        as_of=AS_OF,
    )
    pol = write_policy(extract, workdir)
    rot = run_step(
        "generate rotation (untimed)",
        planning.make_rotation,
        extract=str(extract),
        out=str(rotated),
        movers=movers,
        when=when,
        seed=seed,
    )
    got = int(rot.data["movers"])
    dits = int(rot.data["doctors_in_training_moved"])
    steps: dict[str, StepResult] = {}
    with fresh_database(postgres_url, keep=keep_db) as db_url:
        setup = run_step(
            "set-up: import + provision the trust (untimed)",
            setup_trust,
            db_url=db_url,
            extract=str(extract),
            policy=pol["path"],
            workdir=str(workdir),
            at=day_before,
        )

        def timed(key: str, name: str, func: Any, **kwargs: Any) -> dict[str, Any]:
            steps[key] = run_step(name, func, timeout=timeout, db_url=db_url, **kwargs)
            if steps[key].data.get("timed_out"):
                raise _Stopped
            return steps[key].data

        try:
            batch_id = timed("import", "import_batch", step_import, path=str(rotated), when=when)[
                "batch_id"
            ]
            timed("preview", "preview", step_preview, batch_id=batch_id)
            timed("bare", "peer: bare evaluate + plan", bare_plan, batch_id=batch_id)
            plan_id = timed(
                "execute", "approve + execute_due", step_execute, batch_id=batch_id, when=when
            )["plan_id"]
            run_step("copy target databases (untimed)", copy_targets, workdir=str(workdir))
            timed(
                "worker",
                "worker: provisioning.execute",
                step_worker,
                plan_id=plan_id,
                profile=str(workdir / "worker.prof") if profile else None,
                sample=worker_sample,
            )
            timed(
                "raw",
                "peer: raw executemany",
                raw_baseline,
                plan_id=plan_id,
                policy=pol["path"],
                workdir=str(workdir),
            )
            timed("report", "report", step_report, batch_id=batch_id)
        except _Stopped:
            pass
    return _render(out, command, started_at, when, n_staff, movers, got, dits, pol, setup, steps)


class _Stopped(Exception):
    """A timed step reached the time limit: the later steps are not run."""


def _render(
    out: list[str],
    command: str,
    started_at: dt.datetime,
    when: dt.date,
    n_staff: int,
    movers: int,
    got: int,
    dits: int,
    pol: dict[str, Any],
    setup: StepResult,
    steps: dict[str, StepResult],
) -> list[str]:
    sd = setup.data
    out += [
        f"Measured {started_at:%Y-%m-%d %H:%M} UTC with `{command}`: a synthetic trust of "
        f"{n_staff:,} staff (PostgreSQL hub), of whom {got:,} move on {when:%d %B %Y} "
        f"({dits:,} doctors in training to their next post, the rest laterally to another "
        "department). The bench policy has eight `sql_table` targets (SQLite files: directory, "
        "EPR, doors, PACS, e-rostering, email, learning, pharmacy) with lifecycle settings as in "
        "`examples/policy.yaml` (EPR and pharmacy keep a mover's old roles 7 days); "
        f"{pol['rules']} rules grant per-department unit groups on every target "
        f"({pol['departments']:,} departments in {DEPT_BUCKETS} buckets), per-staff-group "
        "application roles and per-site door zones and lists, so a mover changes groups on "
        "most targets.",
        "",
        f"Set-up, untimed ({setup.seconds:,.0f} s): `import_extract` of the trust "
        f"({sd['import_s']:,} s), then `provisioning.apply` ({sd['apply_s']:,} s, "
        f"{sd['setup_operations']:,} operations recorded); those operations were then marked "
        "succeeded with one SQL `UPDATE` and the target tables filled by bulk insert straight "
        f"from PASA's recorded state ({sd['accounts']:,} accounts, {sd['grants']:,} "
        "memberships) instead of running the worker for the whole trust.",
        "",
    ]
    if any(r.data.get("timed_out") for r in steps.values()):
        out += ["**A step did not finish** (stopped at `--rotation-timeout`):", ""]
        for r in steps.values():
            if r.data.get("timed_out"):
                out.append(f"- {r.name}: NOT FINISHED, stopped after {r.seconds:,.0f} s")
            else:
                ops = r.data.get("operations")
                shown = f", {ops:,} operations" if ops else ""
                out.append(f"- {r.name}: {r.seconds:,.2f} s{shown}")
        return [*out, "", END, ""]
    imp, prev, bare = steps["import"], steps["preview"], steps["bare"]
    exe, work, raw, rep = steps["execute"], steps["worker"], steps["raw"], steps["report"]
    ops = int(exe.data["operations"])
    window = WINDOW_HOURS * 3600
    required = ops / window
    sample = int(work.data.get("sample") or 0)
    worked = int(work.data["succeeded"]) + int(work.data["parked"])
    # Per-operation time against the raw peer's per-operation time, so a sampled worker
    # compares like with like.
    worker_rate = worked / work.seconds if work.seconds else 0.0
    raw_rate = int(raw.data["operations"]) / raw.seconds if raw.seconds else 0.0
    worker_vs_raw = raw_rate / worker_rate if worker_rate else 0.0
    # Time the whole batch needs: each target's operations at that target's measured rate.
    worker_total_s = 0.0
    for w in work.data["per_target"].values():
        done, span = int(w["succeeded"]), float(w["span_s"])
        if done and span:
            worker_total_s += int(w["operations"]) * span / done
    worker_label = (
        f"(d) **worker**: `run_pending`, first {sample:,} operations of each target"
        if sample
        else "(d) **worker**: `provisioning.execute` into 8 targets"
    )
    out += [
        "| step | seconds | operations | ops/s | ratio (time / peer time; limit: multiple of the "
        "required rate) | peak RSS of the step (MiB) | note |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| (a) `import_batch` of the rotation file | {imp.seconds:.2f} | | | | "
        f"{imp.peak_rss_mib:,.0f} | {imp.data['rows']:,} changed rows kept, "
        f"{imp.data['movers']:,} people |",
        f"| (b) **`preview`** (people x targets diff) | **{prev.seconds:.2f}** | "
        f"{prev.data['operations']:,} | {_rate(prev.data['operations'], prev.seconds)} | "
        f"**{prev.seconds / bare.seconds:.1f} x peer** | {prev.peak_rss_mib:,.0f} | "
        f"{prev.data['people_changed']:,} people with access changes |",
        f"| peer: bare `evaluate` + `plan` of the same people, in memory | {bare.seconds:.2f} | "
        f"{bare.data['operations']:,} | {_rate(bare.data['operations'], bare.seconds)} | 1.0 | "
        f"{bare.peak_rss_mib:,.0f} | loading people and recorded state untimed |",
        f"| (c) `approve` + `execute_due` (partial import + plan + ledger) | {exe.seconds:.2f} | "
        f"{ops:,} | {_rate(ops, exe.seconds)} | {exe.seconds / bare.seconds:.1f} x peer | "
        f"{exe.peak_rss_mib:,.0f} | approve {exe.data['approve_s']:.2f} s (not in the "
        "seconds) |",
        f"| {worker_label} | **{work.seconds:.2f}** | "
        f"{worked:,} | **{worker_rate:,.0f}** | **{worker_vs_raw:,.0f} x raw per operation** | "
        f"{work.peak_rss_mib:,.0f} | {work.data['succeeded']:,} succeeded, "
        f"{work.data['parked']:,} parked, {work.data['retried']:,} retried |",
        f"| peer: raw `executemany`, one transaction per target | {raw.seconds:.2f} | "
        f"{raw.data['operations']:,} | {_rate(raw.data['operations'], raw.seconds)} | 1 | "
        f"{raw.peak_rss_mib:,.0f} | same changes into copies of the target tables |",
        f"| limit: all operations between 00:00 and 08:00 | {window:,} | {ops:,} | "
        f"{required:,.1f} | **{worker_rate / required:,.0f} x required** | | worker ops/s "
        "/ required ops/s |",
        f"| (e) `report` | {rep.seconds:.2f} | {rep.data['operations']:,} | | | "
        f"{rep.peak_rss_mib:,.0f} | {rep.data['people_done']:,} of {rep.data['people']:,} "
        f"people fully done, {rep.data['failures']:,} failures |",
        "",
        (
            f"Worker per target (one target at a time; seconds = the worker's run on the first "
            f"{sample:,} operations of that target; time for all = operations at that rate):"
            if sample
            else "Worker per target (targets run one after another; seconds = first to last "
            "completion):"
        ),
        "",
        "| target | operations in the batch | worked | seconds | ops/s | time for all (min) "
        "| raw seconds for all | ratio PASA/raw per operation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in KEYS:
        w = work.data["per_target"].get(key)
        r = raw.data["per_target"].get(key)
        if not w:
            continue
        total, done, span = int(w["operations"]), int(w["succeeded"]), float(w["span_s"])
        rate = done / span if span else 0.0
        raw_s = float(r["seconds"]) if r else 0.0
        per_op_ratio = (span / done) / (raw_s / total) if done and raw_s and total else 0.0
        out.append(
            f"| {key} | {total:,} | {done:,} | {span:.1f} | {rate:,.0f} | "
            f"{total / rate / 60 if rate else 0:,.1f} | {raw_s:.3f} | {per_op_ratio:,.0f} |"
        )
    per_mover = ops / got if got else 0.0
    hours = worker_total_s / 3600
    out += [
        "",
        f"Reading the figures: the preview of {got:,} movers x {len(TARGETS)} targets takes "
        f"{prev.seconds:.1f} s, {prev.seconds / bare.seconds:.1f} x the bare evaluate + plan of "
        "the same people — the difference is reading the batch and the people's HR data, "
        "requests and recorded state from PostgreSQL and planning twice (`what_if` plans the "
        "day without the batch as its baseline, then with it). `execute_due` (partial import, "
        f"plan, ledger and recorded state for {ops:,} operations, {per_mover:.1f} per mover) "
        f"takes {exe.seconds:.1f} s. The worker is the long pole: {worker_rate:,.0f} "
        f"operations/s, {worker_vs_raw:,.0f} x the time per operation of the same writes as "
        "plain `executemany`, because every operation is its own PostgreSQL transaction (claim "
        "`FOR UPDATE`, the earlier-open-operation check, account read, status update, audit "
        "row) wrapped around its own SQLite transaction in the connector (a read of the "
        f"account before each write); {WORKER_PROFILE} At that rate one worker process needs "
        f"about {hours:.1f} h for all {ops:,} operations of this batch — "
        f"{worker_rate / required:,.1f} x the rate the 08:00 limit needs, "
        + (
            "inside the 8-hour window."
            if hours <= WINDOW_HOURS
            else "beyond the 8-hour window: the batch needs more worker processes or an "
            "earlier start."
        ),
        "",
    ]
    if sample:
        out += [
            f"The worker was measured on the first {sample:,} operations of each target "
            f"({worked:,} of {ops:,}), not the whole batch: running all of them would take "
            f"about {hours:.1f} h on this shared 2-core machine. The operations table, indexes "
            "and target tables were at full size while it ran; the time for all is each "
            "target's measured rate applied to its number of operations.",
            "",
        ]
    if got < FULL_MOVERS:
        full_hours = FULL_MOVERS * per_mover / worker_rate / 3600 if worker_rate else 0.0
        out += [
            f"This run has {got:,} movers, not the default {FULL_MOVERS:,} "
            f"(`--rotation-movers`); at {per_mover:.1f} operations per mover and this rate a "
            f"{FULL_MOVERS:,}-mover rotation would need about {full_hours:.1f} h of one worker "
            "— an extrapolation, not a measurement.",
            "",
        ]
    return out
