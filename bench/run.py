"""Run the benchmarks and write ``docs/benchmarks.md``.

    PASA_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.run [--assignments 1500000] [--quick]

(``make bench`` finds or starts PostgreSQL and runs exactly this.) Each measured step runs in
its own child process; each run uses a fresh database created from the URL and migrated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shlex
import sys
from pathlib import Path

from bench import hr_import, pages, passport, planning, provisioning, rotation, scim_provider
from bench.common import (
    ROOT,
    WORK,
    StepResult,
    fresh_database,
    machine_info,
    run_step,
    splice_section,
)
from pasa.hr.synthetic import first_wednesday

AS_OF = dt.date(2026, 7, 1)  # extracts are "as at" 1 July; the rotation is 5 August 2026
ASSIGNMENTS_PER_PERSON = 1.067  # what the generator produces (bank and honorary second rows)
DIT_SHARE = 0.09  # a little under the generator's share of doctors in training


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--assignments", type=int, default=1_500_000, help="HR import size (rows)")
    p.add_argument("--quick", action="store_true", help="small sizes, to check everything runs")
    p.add_argument("--trust-staff", type=int, default=7_000, help="first-full-plan trust size")
    p.add_argument("--movers", type=int, default=50_000, help="rotation size (people)")
    p.add_argument(
        "--import-movers",
        type=int,
        default=50_000,
        help="movers in the rotation file imported third (0 to skip)",
    )
    p.add_argument(
        "--import-timeout",
        type=float,
        default=1800.0,
        help="seconds after which a PASA import step is stopped and reported as not finished",
    )
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument(
        "--only",
        choices=(
            "import",
            "planning",
            "provisioning",
            "rotation",
            "scim",
            "pages",
            "passport",
            "all",
        ),
        default="all",
        help="which benchmarks (provisioning or rotation alone replaces only its own section "
        "of the output)",
    )
    p.add_argument(
        "--provision-staff", type=int, default=10_000, help="new staff provisioned (LDAP, SCIM)"
    )
    p.add_argument(
        "--provision-timeout",
        type=float,
        default=1800.0,
        help="seconds after which a provisioning step is stopped and reported as not finished",
    )
    p.add_argument(
        "--rotation-movers", type=int, default=50_000, help="rotation batch size (people)"
    )
    p.add_argument(
        "--rotation-staff",
        type=int,
        default=None,
        help="rotation batch trust size (default 2.5 x movers, at least 7,000)",
    )
    p.add_argument(
        "--rotation-timeout",
        type=float,
        default=3600.0,
        help="seconds after which a rotation step is stopped and reported as not finished",
    )
    p.add_argument(
        "--rotation-worker-sample",
        type=int,
        default=None,
        help="time the worker on the first N operations of each target instead of all "
        "(a 50,000-mover batch is over a million operations)",
    )
    p.add_argument(
        "--rotation-profile",
        action="store_true",
        help="cProfile the rotation worker step (var/bench/rotation-N/worker.prof)",
    )
    p.add_argument(
        "--scim-sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[10_000, 100_000],
        help="SCIM provider benchmark sizes (users), comma-separated",
    )
    p.add_argument("--passport-count", type=int, default=2000, help="passport operations per row")
    p.add_argument("--postgres-url", default=os.environ.get("PASA_BENCH_POSTGRES_URL"))
    p.add_argument("--output", type=Path, default=None, help="default docs/benchmarks.md")
    p.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = p.parse_args(argv)
    if args.quick:
        args.assignments = min(args.assignments, 50_000)
        args.movers = min(args.movers, 2_000)
        args.import_movers = min(args.import_movers, 2_000)
        args.provision_staff = min(args.provision_staff, 1_000)
        args.rotation_movers = min(args.rotation_movers, 2_000)
        args.scim_sizes = [min(n, 1_000 * (k + 1)) for k, n in enumerate(args.scim_sizes)]
    if args.output is None:
        quick = WORK / "benchmarks-quick.md"
        args.output = quick if args.quick else ROOT / "docs" / "benchmarks.md"
    return args


def _extract(staff: int, seed: int) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    return WORK / f"extract-{staff}-{seed}.csv"


def _mib(x: float) -> str:
    return f"{x:,.0f}"


def run_import(args: argparse.Namespace, gen_rows: list[list[str]]) -> list[str]:
    out = ["## HR import on PostgreSQL", ""]
    if not args.postgres_url:
        print("HR import: skipped (set PASA_BENCH_POSTGRES_URL or use make bench)")
        return [*out, "Not run: no PostgreSQL URL (PASA_BENCH_POSTGRES_URL).", ""]
    staff = max(100, round(args.assignments / ASSIGNMENTS_PER_PERSON))
    path = _extract(staff, args.seed)
    print(f"HR import: {args.assignments:,} assignments ({staff:,} people) -> {path}")
    gen = run_step(
        "generate extract",
        hr_import.generate_extract,
        path=str(path),
        staff=staff,
        seed=args.seed,
        as_of=AS_OF,
    )
    gen_rows.append(
        [
            f"workforce extract, {gen.data['people']:,} people",
            f"{gen.data['rows']:,}",
            f"{gen.seconds:.2f}",
            f"{gen.data['rows_per_s']:,}",
            _mib(gen.peak_rss_mib),
            f"{gen.data['mib']} MiB file",
        ]
    )
    rows = gen.data["rows"]
    steps: list[tuple[StepResult, str]] = []
    with fresh_database(args.postgres_url, keep=args.keep_db) as db_url:
        run_step(
            "prepare snapshot (untimed)", hr_import.prepare_snapshot, db_url=db_url, path=str(path)
        )
        base = run_step(
            "baseline COPY + diff", hr_import.baseline_copy_diff, db_url=db_url, path=str(path)
        )
        run_step("drop baseline tables", hr_import.drop_bench_tables, db_url=db_url)
        missing = hr_import.importer_available()
        if missing is None:
            limit = args.import_timeout
            first = run_step(
                "PASA import #1",
                hr_import.import_once,
                timeout=limit,
                db_url=db_url,
                path=str(path),
                as_of=AS_OF,
            )
            steps.append((first, "first import into an empty hub"))
            if not first.data.get("timed_out"):
                second = run_step(
                    "PASA import #2",
                    hr_import.import_once,
                    timeout=limit,
                    db_url=db_url,
                    path=str(path),
                    as_of=AS_OF,
                )
                steps.append((second, "same file again: nothing changed"))
            if args.import_movers and not first.data.get("timed_out"):
                when = first_wednesday(AS_OF.year, 8)
                rotated = WORK / f"rotation-{staff}-{args.import_movers}-{args.seed}.csv"
                run_step(
                    "generate rotation (untimed)",
                    planning.make_rotation,
                    extract=str(path),
                    out=str(rotated),
                    movers=args.import_movers,
                    when=when,
                    seed=args.seed,
                )
                third = run_step(
                    "PASA import #3",
                    hr_import.import_once,
                    timeout=limit,
                    db_url=db_url,
                    path=str(rotated),
                    as_of=when,
                )
                steps.append((third, f"rotation file: {args.import_movers:,} movers on {when}"))
        else:
            print(f"  PASA import: skipped, {missing}")
    base_s = base.seconds
    out += [
        f"Extract: {rows:,} assignments ({staff:,} people), organisation RXL, seed {args.seed}.",
        "",
        "| step | seconds | rows/s | ratio to baseline | peak RSS of the step (MiB) | result |",
        "|---|---:|---:|---:|---:|---|",
        f"| baseline: `COPY` into an all-text table | {base.data['copy_s']:.2f} | "
        f"{rows / base.data['copy_s']:,.0f} | | | {base.data['rows']:,} rows |",
        f"| baseline: hash-join diff vs previous snapshot (md5 per row) | "
        f"{base.data['diff_s']:.2f} | | | | {base.data['rows_differing']:,} rows differ |",
        f"| **baseline total** (COPY + diff) | **{base_s:.2f}** | {rows / base_s:,.0f} | 1.00 | "
        f"{_mib(base.peak_rss_mib)} | |",
    ]
    for step, note in steps:
        d = step.data
        if d.get("timed_out"):
            out.append(
                f"| **{step.name}** | > {step.seconds:.0f} | | **> {step.seconds / base_s:.1f}** "
                f"| | {note}; NOT FINISHED, stopped after {step.seconds:.0f} s |"
            )
            continue
        result = (
            f"{note}; status {d.get('status')}, accepted {d.get('rows_accepted')}, "
            f"rejected {d.get('rows_rejected')}, events new/changed/ended "
            f"{d.get('events_new')}/{d.get('events_changed')}/{d.get('events_ended')}"
        )
        out.append(
            f"| **{step.name}** | {step.seconds:.2f} | {rows / step.seconds:,.0f} | "
            f"**{step.seconds / base_s:.2f}** | {_mib(step.peak_rss_mib)} | {result} |"
        )
    out.append("")
    if not steps:
        out += [f"PASA import not measured: {hr_import.importer_available()}.", ""]
    out += [
        "Goal: PASA import ≤ 2.0 x baseline. The baseline's peak RSS is the Python client "
        "only (the server does the work); PASA's import runs its own parsing and validation "
        "in Python, so its RSS is the importer process.",
        "",
        "Where the time goes (per-statement profile of the importer at 300,000 rows, same "
        "machine): an unchanged file costs parsing and validating every field in Python "
        "(about 14 µs a row, some 65% of the re-import), building the COPY text and the COPY "
        "itself (about 20%), and one hash join of staging against the hub (about 6%); "
        "nothing else runs when nothing changed. The first import additionally writes every "
        "person, identifier, assignment, history version and event (five tables of 1.5 "
        "million rows each, with their indexes and foreign keys), which the baseline does not "
        "do. Reaching 2.0 on the daily re-import needs the validator about twice as fast "
        "(e.g. skipping re-validation of byte-identical lines whose rules do not depend on "
        "the date).",
        "",
    ]
    return out


def run_planning(args: argparse.Namespace, gen_rows: list[list[str]]) -> list[str]:
    out = ["## Planning throughput (policy evaluation + plan, in memory)", ""]
    missing = planning.planning_available()
    if missing is not None:
        print(f"Planning: skipped, {missing}")
        return [*out, f"Not run: {missing}.", ""]
    results: list[tuple[str, StepResult]] = []
    # 1. A 7,000-staff trust, first full plan from empty.
    trust = _extract(args.trust_staff, args.seed)
    print(f"Planning: first full plan for {args.trust_staff:,} staff")
    run_step(
        "generate trust extract",
        hr_import.generate_extract,
        path=str(trust),
        staff=args.trust_staff,
        seed=args.seed,
        as_of=AS_OF,
    )
    first = run_step("first full plan", planning.first_full_plan, extract=str(trust), as_of=AS_OF)
    results.append((f"first full plan, {args.trust_staff:,}-staff trust, from empty", first))
    # 2. A rotation of N movers (doctors in training): a workforce big enough to hold them.
    staff = max(args.trust_staff, math.ceil(args.movers / DIT_SHARE))
    when = first_wednesday(AS_OF.year, 8)
    big = _extract(staff, args.seed)
    rotated = WORK / f"rotation-{staff}-{args.movers}-{args.seed}.csv"
    print(f"Planning: rotation of {args.movers:,} movers out of {staff:,} staff on {when}")
    gen = run_step(
        "generate workforce",
        hr_import.generate_extract,
        path=str(big),
        staff=staff,
        seed=args.seed,
        as_of=AS_OF,
    )
    rot = run_step(
        "generate rotation",
        planning.make_rotation,
        extract=str(big),
        out=str(rotated),
        movers=args.movers,
        when=when,
        seed=args.seed,
    )
    gen_rows.append(
        [
            f"rotation of {args.movers:,} movers over a {gen.data['rows']:,}-row extract",
            f"{rot.data['rows']:,}",
            f"{rot.seconds:.2f}",
            f"{rot.data['rows_per_s']:,}",
            _mib(rot.peak_rss_mib),
            f"{rot.data['doctors_in_training_moved']:,} doctors in training moved",
        ]
    )
    moved = run_step(
        "rotation plan",
        planning.rotation_plan,
        before=str(big),
        after=str(rotated),
        movers=rot.data["moved"],
        when=when,
    )
    results.append((f"rotation: {args.movers:,} movers on {when:%d %B %Y}", moved))
    out += [
        "| scenario | people | operations | evaluate (s) | plan (s) | operations/s | "
        "people/s | peak RSS of the step (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results:
        d = r.data
        out.append(
            f"| {label} | {d['people']:,} | {d['operations']:,} | {d['evaluate_s']:.2f} | "
            f"{d['plan_s']:.2f} | **{d['ops_per_s']:,}** | {d['people_per_s']:,} | "
            f"{_mib(r.peak_rss_mib)} |"
        )
    kinds = moved.data.get("kinds", {})
    if kinds:
        out += [
            "",
            "Rotation operations by kind: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items()))
            + ".",
        ]
    out += [
        "",
        "People are built from the synthetic extract in the child process (no database); the "
        "timed part is `evaluate` + `plan` with `examples/policy.yaml`. For the rotation, the "
        "movers' recorded state is what a first plan the day before created (untimed), and the "
        "timed plan takes them to their new positions. Peak RSS includes the people in memory.",
        "",
    ]
    return out


def _write_section(output: Path, found: list[str], start: str, end: str) -> int:
    """Replace one benchmark's section of an existing file, keeping the others."""
    old = output.read_text(encoding="utf-8") if output.exists() else ""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(splice_section(old, found, start, end), encoding="utf-8")
    print(f"written the {start.strip('<!- ').split(':')[0]} section of {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = dt.datetime.now(dt.UTC)
    gen_rows: list[list[str]] = []
    sections: list[str] = []
    url_shown = "PASA_BENCH_POSTGRES_URL=<url> " if args.postgres_url else ""
    given = sys.argv[1:] if argv is None else argv
    command = f"{url_shown}.venv/bin/python -m bench.run {shlex.join(given)}".strip()
    if args.only in ("import", "all"):
        sections += run_import(args, gen_rows)
    if args.only in ("planning", "all"):
        sections += run_planning(args, gen_rows)
    if args.only in ("provisioning", "all"):
        found = provisioning.section(args.provision_staff, args.provision_timeout, command)
        if args.only == "provisioning":
            return _write_section(args.output, found, provisioning.START, provisioning.END)
        sections += found
    if args.only in ("rotation", "all"):
        found = rotation.section(
            args.postgres_url,
            args.rotation_movers,
            args.rotation_staff,
            args.seed,
            args.rotation_timeout,
            command,
            keep_db=args.keep_db,
            profile=args.rotation_profile,
            worker_sample=args.rotation_worker_sample,
        )
        if args.only == "rotation":
            return _write_section(args.output, found, rotation.START, rotation.END)
        sections += found
    if args.only in ("passport", "all"):
        found = passport.section(args.passport_count, command)
        if args.only == "passport":
            return _write_section(args.output, found, passport.START, passport.END)
        sections += found
    if args.only in ("pages", "all"):
        found = pages.section(args.postgres_url, args.trust_staff, args.seed, command)
        if args.only == "pages":
            return _write_section(args.output, found, pages.START, pages.END)
        sections += found
    if args.only in ("scim", "all"):
        found = scim_provider.section(args.postgres_url, args.scim_sizes, command)
        if args.only == "scim":
            return _write_section(args.output, found, scim_provider.START, scim_provider.END)
        sections += found
    info = machine_info(args.postgres_url)
    lines = [
        "# Benchmarks",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```",
        command.strip(),
        "```",
        "",
        "(`make bench` runs the same with the PostgreSQL it finds or starts.) Each measured "
        'step runs in its own freshly spawned process; "peak RSS" is that process\'s own '
        "maximum resident set size (`getrusage`). Every run creates a new database from the "
        "URL and migrates it with `pasa.store.db.migrate`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        *sections,
    ]
    if gen_rows:
        lines += [
            "## Synthetic data generation",
            "",
            "| what | rows | seconds | rows/s | peak RSS (MiB) | note |",
            "|---|---:|---:|---:|---:|---|",
            *("| " + " | ".join(r) + " |" for r in gen_rows),
            "",
        ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
