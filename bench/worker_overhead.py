"""The worker's own cost per operation: ``run_pending`` vs the bare connector calls.

N operations (N/4 starters: a ``create_account`` and three ``add_membership`` each) are
recorded in a fresh ledger and carried out by :func:`pasa.engine.worker.run_pending` into a
fast in-process target (``memory``, or ``sql_table`` on a SQLite file), on SQLite and on
PostgreSQL. The same calls are then made straight on a fresh connector. The difference,
per operation, is the ledger and audit overhead of the worker (claiming, outcome records,
the audit hash chain, commits)::

    .venv/bin/python -m bench.worker_overhead                 # 4,000 operations, both DBs
    .venv/bin/python -m bench.worker_overhead --ops 20000 --backends sqlite
    .venv/bin/python -m bench.worker_overhead --baseline /tmp/worker_orig.py

``--baseline FILE`` also times another copy of the worker module (e.g. the worker before a
change) in the same run, each variant on its own fresh database, in alternating rounds, so
the figures compare like with like on a busy machine. PostgreSQL comes from
``--postgres-url`` (default ``PASA_BENCH_POSTGRES_URL``, then ``PASA_TEST_POSTGRES_URL``);
without one only SQLite runs. The audit chain of every run is verified.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from bench.common import fresh_database, synthetic_people

TARGET = "app"
GROUPS = 3


@dataclass(frozen=True, slots=True)
class Timing:
    variant: str
    backend: str
    operations: int
    seconds: float
    connector_seconds: float

    @property
    def ops_per_s(self) -> float:
        return self.operations / self.seconds

    @property
    def connector_ops_per_s(self) -> float:
        return self.operations / self.connector_seconds

    @property
    def overhead_ms(self) -> float:
        """Worker milliseconds per operation on top of the connector call."""
        return (self.seconds - self.connector_seconds) * 1000 / self.operations


def _load_worker(path: str | None) -> ModuleType:
    if path is None:
        from pasa.engine import worker

        return worker
    spec = importlib.util.spec_from_file_location("pasa_worker_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load a worker module from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _connector(kind: str, workdir: Path, tag: str) -> Any:
    if kind == "memory":
        from pasa.connectors.memory import MemoryConnector

        return MemoryConnector(TARGET)
    from pasa.connectors.sqltable import SqlTableConnector, SqlTableSettings

    settings = SqlTableSettings(url=f"sqlite:///{workdir / f'app-{tag}.db'}")
    return SqlTableConnector(settings, name=TARGET)


def _attributes(i: int) -> dict[str, Any]:
    from pasa.connectors.kit import sample_attributes

    return sample_attributes(
        f"{10000000 + i}",
        first_name=f"First{i}",
        last_name=f"Last{i}",
        display_name=f"First{i} Last{i}",
    )


def _groups(i: int) -> list[str]:
    return [f"dept-{i % 100}", "all-staff", f"zone-{i % 7}"][:GROUPS]


@contextmanager
def _database(backend: str, workdir: Path, tag: str, postgres_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        from pasa.store.db import make_engine, migrate

        url = f"sqlite:///{workdir / f'pasa-{tag}.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    assert postgres_url is not None
    with fresh_database(postgres_url) as url:
        yield url


def _seed(url: str, people: int) -> None:
    from pasa.domain.grants import Reason
    from pasa.domain.operations import OperationKind, PlannedOperation
    from pasa.engine.ledger import record_plan
    from pasa.store.db import make_engine
    from pasa.store.schema import person, target

    now = dt.datetime.now(dt.UTC)
    reason = (Reason("rule", "all-staff", "starter", "RXX", "bench"),)
    ops: list[PlannedOperation] = []
    for i in range(1, people + 1):
        name = f"user{i:06d}"
        ops.append(
            PlannedOperation(
                OperationKind.CREATE_ACCOUNT,
                i,
                TARGET,
                name,
                {"attributes": _attributes(i)},
                reason,
            )
        )
        ops += [
            PlannedOperation(
                OperationKind.ADD_MEMBERSHIP,
                i,
                TARGET,
                name,
                {"kind": "group", "value": g},
                reason,
            )
            for g in _groups(i)
        ]
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            target.insert().values(
                key=TARGET,
                name="Application",
                connector="memory",
                settings={},
                username_template="{first_initial}{last_name}",
                paused=False,
            )
        )
        conn.execute(person.insert(), synthetic_people(range(1, people + 1), now))
        record_plan(conn, ops, plan_id="bench-overhead", actor="bench", now=now)
    engine.dispose()


def _connector_only(connector: Any, people: int) -> float:
    """The same calls as the worker makes, straight on the connector."""
    attrs = [_attributes(i) for i in range(1, people + 1)]  # built outside the timing
    started = time.perf_counter()
    for i in range(1, people + 1):
        name = f"user{i:06d}"
        connector.create(name, attrs[i - 1])
        for g in _groups(i):
            connector.add_member(name, "group", g)
    return time.perf_counter() - started


def _check(url: str, operations: int) -> None:
    from pasa.audit import log as audit
    from pasa.store.db import make_engine
    from pasa.store.schema import operation

    engine = make_engine(url)
    with engine.connect() as conn:
        done = conn.execute(
            sa.select(sa.func.count()).where(operation.c.status == "succeeded")
        ).scalar_one()
        verified = audit.verify(conn)
    engine.dispose()
    if done != operations or not verified.ok:
        raise SystemExit(
            f"run incomplete: {done}/{operations} succeeded, audit chain ok={verified.ok}"
        )


def measure(
    variant: str,
    worker: ModuleType,
    backend: str,
    *,
    operations: int,
    connector_kind: str,
    workdir: Path,
    postgres_url: str | None,
    round_no: int,
) -> Timing:
    from pasa.store.db import make_engine

    people = max(1, operations // (1 + GROUPS))
    total = people * (1 + GROUPS)
    tag = f"{variant}-{backend}-{round_no}"
    with _database(backend, workdir, tag, postgres_url) as url:
        _seed(url, people)
        engine = make_engine(url)
        connector = _connector(connector_kind, workdir, tag)
        run_pending: Callable[..., Any] = worker.run_pending
        started = time.perf_counter()
        report = run_pending(engine, {TARGET: connector})
        seconds = time.perf_counter() - started
        connector.close()
        engine.dispose()
        if report.succeeded != total:
            raise SystemExit(f"{variant} on {backend}: {report}")
        _check(url, total)
    direct = _connector(connector_kind, workdir, tag + "-direct")
    connector_seconds = _connector_only(direct, people)
    direct.close()
    return Timing(variant, backend, total, seconds, connector_seconds)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.worker_overhead", description=__doc__)
    p.add_argument("--ops", type=int, default=4000, help="operations per run (default 4000)")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--connector", choices=("memory", "sql_table"), default="memory")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds (best is kept)")
    p.add_argument("--baseline", help="another worker module file to time in the same run")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("PASA_BENCH_POSTGRES_URL")
        or os.environ.get("PASA_TEST_POSTGRES_URL"),
    )
    args = p.parse_args(argv)

    variants: list[tuple[str, ModuleType]] = []
    if args.baseline:
        variants.append(("baseline", _load_worker(args.baseline)))
    variants.append(("current", _load_worker(None)))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgresql" in backends and not args.postgres_url:
        print("postgresql: skipped (set PASA_BENCH_POSTGRES_URL or --postgres-url)")
        backends.remove("postgresql")

    best: dict[tuple[str, str], Timing] = {}
    with tempfile.TemporaryDirectory(prefix="pasa-bench-worker-") as tmp:
        for round_no in range(args.rounds):
            for backend in backends:
                for variant, module in variants:
                    t = measure(
                        variant,
                        module,
                        backend,
                        operations=args.ops,
                        connector_kind=args.connector,
                        workdir=Path(tmp),
                        postgres_url=args.postgres_url,
                        round_no=round_no,
                    )
                    print(
                        f"  round {round_no + 1} {backend:10} {variant:8} {t.seconds:7.2f}s "
                        f"{t.ops_per_s:9,.0f} ops/s  overhead {t.overhead_ms:.3f} ms/op",
                        flush=True,
                    )
                    key = (backend, variant)
                    if key not in best or t.seconds < best[key].seconds:
                        best[key] = t

    print()
    print(
        f"| backend | worker | operations | worker s | worker ops/s | connector-only ops/s "
        f"({args.connector}) | overhead ms/op |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for (backend, variant), t in best.items():
        print(
            f"| {backend} | {variant} | {t.operations:,} | {t.seconds:.2f} | {t.ops_per_s:,.0f} "
            f"| {t.connector_ops_per_s:,.0f} | {t.overhead_ms:.3f} |"
        )
    if args.baseline:
        for backend in backends:
            before, after = best[(backend, "baseline")], best[(backend, "current")]
            print(
                f"{backend}: overhead {before.overhead_ms:.3f} -> {after.overhead_ms:.3f} ms/op "
                f"({before.overhead_ms / max(after.overhead_ms, 1e-9):.1f}x less), "
                f"worker {before.ops_per_s:,.0f} -> {after.ops_per_s:,.0f} ops/s"
            )


if __name__ == "__main__":
    main()
