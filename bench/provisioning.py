"""Provisioning benchmarks: PASA's connectors against a bare client of the same server.

Each step runs in its own child process (see :mod:`bench.common`) and starts its own fresh
server (untimed): a real OpenLDAP ``slapd`` or the independent ``scim2-server``. The step
returns the seconds of the measured part only.

Every new member of staff is one account plus three memberships: a department group
(``dept-NN``, 100 of them), an application role (``app_role``, 40) and a door zone
(``door_zone``, 20), so no group grows beyond a few hundred members.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import StepResult, run_step, synthetic_people

# The slapd and scim2-server starters live with the connector tests; the benchmark reuses
# them (run from the repository root, as ``python -m bench.run`` is).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "connectors"))

PASSWORD_ENV = "PASA_BENCH_LDAP_PASSWORD"  # the variable's name, not a secret
SCIM_TOKEN_ENV = "PASA_BENCH_SCIM_TOKEN"  # the variable's name, not a secret
TARGET = "ldap"
LDAP_PREFIX = {"group": "", "app_role": "app-", "door_zone": "door-"}
SCIM_PREFIX = {"group": "", "app_role": "app:", "door_zone": "door:"}
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def tools_available() -> str | None:
    """``None`` when slapd, ldap-utils and scim2-server are installed, else what is missing."""
    missing = [p for p in ("/usr/sbin/slapd",) if not Path(p).exists()]
    missing += [t for t in ("ldapadd", "ldapsearch") if shutil.which(t) is None]
    if not Path(sys.executable).with_name("scim2-server").exists():
        missing.append("scim2-server (in the venv)")
    return f"not installed: {', '.join(missing)}" if missing else None


# --- the staff ---------------------------------------------------------------------------


def username(i: int) -> str:
    return f"user{i:06d}"


def attributes(i: int) -> dict[str, Any]:
    """What the planner sends on create for person ``i``."""
    return {
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "display_name": f"First{i} Last{i}",
        "email": f"first{i}.last{i}@nhs.net",
        "employee_number": str(10_000_000 + i),
        "organisation": "RXX",
        "department": f"Department {i % 100}",
        "job_title": "Staff nurse",
        "manager_employee_number": None,
    }


def memberships(i: int) -> list[tuple[str, str]]:
    return [
        ("group", f"dept-{i % 100:02d}"),
        ("app_role", f"role-{i % 40}"),
        ("door_zone", f"zone-{i % 20}"),
    ]


def staff(n: int) -> Iterator[int]:
    return iter(range(1, n + 1))


# --- LDAP --------------------------------------------------------------------------------


def _slapd(workdir: Path) -> Any:
    from slapd_server import SlapdServer  # type: ignore[import-not-found]

    server = SlapdServer(workdir)
    server.start()
    return server


def _ldap_connector(server: Any) -> Any:
    from pasa.connectors.ldap import LdapConnector, LdapSettings

    os.environ[PASSWORD_ENV] = server.root_password
    settings = LdapSettings(
        url=server.url,
        bind_dn=server.root_dn,
        bind_password_env=PASSWORD_ENV,
        base_dn=server.suffix,
    )
    return LdapConnector(settings, name=TARGET)


def _ldap_settings(server: Any) -> dict[str, Any]:
    return {
        "url": server.url,
        "bind_dn": server.root_dn,
        "bind_password_env": PASSWORD_ENV,
        "base_dn": server.suffix,
    }


def _ldap_counts(server: Any) -> dict[str, int]:
    """Users, groups and member values now in the directory (to check both sides agree)."""
    conn = server.connect()
    try:
        base = f"ou=people,{server.suffix}"
        users = conn.extend.standard.paged_search(
            base, "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=1000
        )
        n_users = sum(1 for _ in users)
        groups = conn.extend.standard.paged_search(
            f"ou=groups,{server.suffix}", "(objectClass=groupOfNames)", attributes=["member"]
        )
        n_groups = members = 0
        placeholder = f"cn=pasa-empty-group,{server.suffix}".lower()
        for g in groups:
            n_groups += 1
            members += sum(1 for m in g["attributes"]["member"] if m.lower() != placeholder)
    finally:
        conn.unbind()
    return {"users": n_users, "groups": n_groups, "members": members}


def ldap_pasa_connector(n: int) -> dict[str, Any]:
    """PASA's LdapConnector: ``create`` + three ``add_member`` per person, one connection."""
    with tempfile.TemporaryDirectory(prefix="pasa-bench-slapd-") as tmp:
        server = _slapd(Path(tmp))
        try:
            connector = _ldap_connector(server)
            started = time.perf_counter()
            for i in staff(n):
                name = username(i)
                connector.create(name, attributes(i))
                for kind, value in memberships(i):
                    connector.add_member(name, kind, value)
            seconds = time.perf_counter() - started
            connector.close()
            return {"seconds": seconds, **_ldap_counts(server)}
        finally:
            server.stop()


def _ldif(n: int, suffix: str) -> str:
    """The same entries and membership changes as LDIF change records, in the same order."""
    from pasa.connectors.ldap import new_entry

    people, groups = f"ou=people,{suffix}", f"ou=groups,{suffix}"
    made: set[str] = set()
    out: list[str] = []
    for i in staff(n):
        name = username(i)
        dn = f"uid={name},{people}"
        classes, entry = new_entry(name, attributes(i), "openldap")
        out.append(f"dn: {dn}\nchangetype: add")
        out += [f"objectClass: {c}" for c in classes]
        out += [f"{k}: {v}" for k, v in entry.items()]
        out.append("")
        for kind, value in memberships(i):
            cn = LDAP_PREFIX[kind] + value
            if cn in made:
                out.append(
                    f"dn: cn={cn},{groups}\nchangetype: modify\nadd: member\nmember: {dn}\n-\n"
                )
            else:
                made.add(cn)
                out.append(
                    f"dn: cn={cn},{groups}\nchangetype: add\nobjectClass: top\n"
                    f"objectClass: groupOfNames\ncn: {cn}\nmember: {dn}\n"
                )
    return "\n".join(out)


def ldap_raw_ldapadd(n: int) -> dict[str, Any]:
    """``ldapadd`` (ldap-utils) of one LDIF holding the same adds and member modifications."""
    with tempfile.TemporaryDirectory(prefix="pasa-bench-slapd-") as tmp:
        server = _slapd(Path(tmp))
        try:
            ldif = Path(tmp) / "staff.ldif"
            ldif.write_text(_ldif(n, server.suffix), encoding="utf-8")
            command = ["ldapadd", "-x", "-H", server.url, "-D", server.root_dn]
            command += ["-w", server.root_password, "-f", str(ldif)]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"ldapadd failed ({done.returncode}): {done.stderr[-2000:]}")
            mib = round(ldif.stat().st_size / 2**20, 1)
            return {"seconds": seconds, "ldif_mib": mib, **_ldap_counts(server)}
        finally:
            server.stop()


def _starter_plan(engine: Any, server: Any, n: int) -> list[Any]:
    """The directory target, ``n`` people and their starter operations (not yet recorded)."""
    from pasa.domain.grants import Reason
    from pasa.domain.operations import OperationKind, PlannedOperation
    from pasa.store.schema import person, target

    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            target.insert().values(
                key=TARGET,
                name="Trust directory",
                connector="ldap",
                settings=_ldap_settings(server),
                username_template="{first_initial}{last_name}",
                paused=False,
            )
        )
        conn.execute(person.insert(), synthetic_people(staff(n), now))
    reason = (Reason("rule", "all-staff", "starter", "RXX", "bench"),)
    ops: list[PlannedOperation] = []
    for i in staff(n):
        name = username(i)
        ops.append(
            PlannedOperation(
                OperationKind.CREATE_ACCOUNT, i, TARGET, name, {"attributes": attributes(i)}, reason
            )
        )
        ops += [
            PlannedOperation(
                OperationKind.ADD_MEMBERSHIP,
                i,
                TARGET,
                name,
                {"kind": kind, "value": value},
                reason,
            )
            for kind, value in memberships(i)
        ]
    return ops


def _succeeded(engine: Any) -> int:
    import sqlalchemy as sa

    from pasa.store.schema import operation

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(operation.c.status == "succeeded")
            ).scalar_one()
        )


def ldap_pasa_end_to_end(n: int) -> dict[str, Any]:
    """record_plan (ledger, SQLite) then run_pending (worker + audit) into slapd."""
    from pasa.engine.ledger import record_plan
    from pasa.engine.worker import run_pending
    from pasa.store.db import make_engine, migrate

    with tempfile.TemporaryDirectory(prefix="pasa-bench-slapd-") as tmp:
        server = _slapd(Path(tmp))
        try:
            connector = _ldap_connector(server)
            engine = make_engine(f"sqlite:///{tmp}/pasa.db")
            migrate(engine)
            ops = _starter_plan(engine, server, n)
            started = time.perf_counter()
            with engine.begin() as conn:
                record_plan(conn, ops, plan_id="bench-starters", actor="bench")
            recorded = time.perf_counter()
            report = run_pending(engine, {TARGET: connector})
            finished = time.perf_counter()
            connector.close()
            succeeded = _succeeded(engine)
            engine.dispose()
            return {
                "seconds": finished - started,
                "record_s": round(recorded - started, 2),
                "worker_s": round(finished - recorded, 2),
                "operations": len(ops),
                "succeeded": succeeded,
                "parked": report.parked,
                "retried": report.retried,
                **_ldap_counts(server),
            }
        finally:
            server.stop()


PARTITIONS = 4


def _drain_partition(url: str, ldap: dict[str, str], password: str, k: int, n: int) -> None:
    """One worker process: partition ``k`` of ``n`` (as one procrastinate drain job runs)."""
    from pasa.connectors.ldap import LdapConnector, LdapSettings
    from pasa.engine.worker import run_pending
    from pasa.store.db import make_engine

    os.environ[PASSWORD_ENV] = password
    engine = make_engine(url)
    connector = LdapConnector(
        LdapSettings(
            url=ldap["url"],
            bind_dn=ldap["bind_dn"],
            bind_password_env=PASSWORD_ENV,
            base_dn=ldap["base_dn"],
        ),
        name=TARGET,
    )
    run_pending(engine, {TARGET: connector}, partition=(k, n))
    connector.close()
    engine.dispose()


def ldap_pasa_partitions(n: int) -> dict[str, Any]:
    """The same, with the ledger on PostgreSQL and four worker processes each draining one
    partition of the accounts at once: how ``pasa worker`` scales out."""
    import multiprocessing

    from bench.common import fresh_database
    from pasa.engine.ledger import record_plan
    from pasa.store.db import make_engine, migrate

    admin_url = os.environ.get("PASA_BENCH_POSTGRES_URL")
    if not admin_url:
        raise RuntimeError("needs PostgreSQL for concurrent workers (PASA_BENCH_POSTGRES_URL)")
    with (
        tempfile.TemporaryDirectory(prefix="pasa-bench-slapd-") as tmp,
        fresh_database(admin_url) as url,
    ):
        server = _slapd(Path(tmp))
        try:
            engine = make_engine(url)
            migrate(engine)
            ops = _starter_plan(engine, server, n)
            started = time.perf_counter()
            with engine.begin() as conn:
                record_plan(conn, ops, plan_id="bench-starters", actor="bench")
            recorded = time.perf_counter()
            context = multiprocessing.get_context("spawn")
            workers = [
                context.Process(
                    target=_drain_partition,
                    args=(url, _ldap_settings(server), server.root_password, k, PARTITIONS),
                )
                for k in range(PARTITIONS)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            finished = time.perf_counter()
            succeeded = _succeeded(engine)
            engine.dispose()
            return {
                "seconds": finished - started,
                "record_s": round(recorded - started, 2),
                "worker_s": round(finished - recorded, 2),
                "operations": len(ops),
                "succeeded": succeeded,
                "partitions": PARTITIONS,
                **_ldap_counts(server),
            }
        finally:
            server.stop()


# --- SCIM --------------------------------------------------------------------------------


def _scim() -> Any:
    from scim_server import TOKEN, start_scim_server  # type: ignore[import-not-found]

    os.environ[SCIM_TOKEN_ENV] = TOKEN
    return start_scim_server()


def _scim_counts(server: Any) -> dict[str, int]:
    with server.client() as http:
        users = http.get("/Users", params={"count": 0}).json().get("totalResults", 0)
        start, members, groups = 1, 0, 0
        while True:
            page = http.get("/Groups", params={"startIndex": start, "count": 200}).json()
            resources = page.get("Resources") or []
            if not resources:
                break
            groups += len(resources)
            members += sum(len(g.get("members") or []) for g in resources)
            start += len(resources)
    return {"users": int(users), "groups": groups, "members": members}


def scim_pasa_connector(n: int) -> dict[str, Any]:
    """PASA's ScimConnector: ``create`` + three ``add_member`` per person."""
    from pasa.connectors.scim import ScimConnector, ScimSettings

    server = _scim()
    try:
        connector = ScimConnector(ScimSettings(base_url=server.base_url, token_env=SCIM_TOKEN_ENV))
        started = time.perf_counter()
        for i in staff(n):
            name = username(i)
            connector.create(name, attributes(i))
            for kind, value in memberships(i):
                connector.add_member(name, kind, value)
        seconds = time.perf_counter() - started
        connector.close()
        return {"seconds": seconds, **_scim_counts(server)}
    finally:
        server.stop()


def scim_user_payload(i: int) -> dict[str, Any]:
    """The User resource PASA's connector sends for person ``i``, as plain JSON."""
    a = attributes(i)
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": username(i),
        "name": {"givenName": a["first_name"], "familyName": a["last_name"]},
        "displayName": a["display_name"],
        "title": a["job_title"],
        "active": True,
        "emails": [{"value": a["email"], "type": "work", "primary": True}],
        ENTERPRISE: {
            "employeeNumber": a["employee_number"],
            "organization": a["organisation"],
            "department": a["department"],
        },
    }


def scim_raw_httpx(n: int) -> dict[str, Any]:
    """A bare httpx client: POST each User, then POST (first) or PATCH ``add`` each Group.

    It keeps the ids it was given, so it never searches: the least work a client can do.
    """
    server = _scim()
    try:
        groups: dict[str, str] = {}
        headers = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
        with server.client() as http:
            http.headers.update(headers)
            started = time.perf_counter()
            for i in staff(n):
                created = http.post("/Users", json=scim_user_payload(i))
                created.raise_for_status()
                user_id = created.json()["id"]
                for kind, value in memberships(i):
                    display = SCIM_PREFIX[kind] + value
                    member = [{"value": user_id}]
                    if display in groups:
                        patch = {
                            "schemas": [PATCH_SCHEMA],
                            "Operations": [{"op": "add", "path": "members", "value": member}],
                        }
                        http.patch(f"/Groups/{groups[display]}", json=patch).raise_for_status()
                    else:
                        body = {
                            "schemas": [GROUP_SCHEMA],
                            "displayName": display,
                            "members": member,
                        }
                        made = http.post("/Groups", json=body)
                        made.raise_for_status()
                        groups[display] = made.json()["id"]
            seconds = time.perf_counter() - started
        return {"seconds": seconds, **_scim_counts(server)}
    finally:
        server.stop()


# --- the section of docs/benchmarks.md ---------------------------------------------------

START = "<!-- provisioning:start -->"
END = "<!-- provisioning:end -->"


def _stop_on_sigterm() -> None:
    """A stopped step (``run_step`` timeout) still runs its ``finally``: servers stop too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _step(name: str, func: Any, n: int, timeout: float) -> StepResult:
    return run_step(name, _guarded, timeout=timeout, work=func, n=n)


def _guarded(work: Any, n: int) -> dict[str, Any]:
    _stop_on_sigterm()
    return dict(work(n))


def section(n: int, timeout: float, command: str) -> list[str]:
    """Run the provisioning benchmarks for ``n`` new staff; the Markdown section (with its
    markers, so ``--only provisioning`` can replace it alone)."""
    out = [START, "## Provisioning into real targets (PASA vs a bare client)", ""]
    missing = tools_available()
    if missing is not None:
        print(f"Provisioning: skipped, {missing}")
        return [*out, f"Not run: {missing}.", "", END, ""]
    started = dt.datetime.now(dt.UTC)
    print(f"Provisioning: {n:,} new staff, each 1 account + 3 memberships")
    pairs = [
        (
            "OpenLDAP slapd",
            (
                "raw: `ldapadd` (ldap-utils) of one LDIF, same entries + member adds",
                ldap_raw_ldapadd,
            ),
            [
                ("**PASA LdapConnector** (`create` + 3 `add_member`, direct)", ldap_pasa_connector),
                (
                    "**PASA end to end**: `record_plan` (SQLite ledger) + `run_pending` "
                    "(worker, audit) through LdapConnector",
                    ldap_pasa_end_to_end,
                ),
                (
                    f"**PASA end to end, {PARTITIONS} workers**: ledger on PostgreSQL, "
                    f"{PARTITIONS} worker processes each draining one partition of the accounts",
                    ldap_pasa_partitions,
                ),
            ],
        ),
        (
            "scim2-server",
            ("raw: bare `httpx` POST User + POST/PATCH Group, ids kept", scim_raw_httpx),
            [("**PASA ScimConnector** (`create` + 3 `add_member`, direct)", scim_pasa_connector)],
        ),
    ]
    out += [
        f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}`: {n:,} new staff, each one "
        "account and three memberships (a department group of ~1% of staff, an application "
        "role, a door zone: 160 groups), i.e. "
        f"{4 * n:,} directory changes. Every row starts its own fresh server (untimed) on "
        "127.0.0.1; the client is one process with one connection. **ratio** = raw seconds / "
        "PASA seconds (throughput of PASA relative to the bare client; goal ≥ 0.8).",
        "",
        "| target | client | seconds | staff/s | changes/s | ratio (raw/PASA) | "
        "client peak RSS (MiB) | check |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for server, (raw_label, raw_func), pasa in pairs:
        raw = _step(f"{server}: {raw_func.__name__}", raw_func, n, timeout)
        rows = [(raw_label, raw)]
        rows += [(label, _step(f"{server}: {f.__name__}", f, n, timeout)) for label, f in pasa]
        for label, r in rows:
            d = r.data
            if d.get("timed_out") or raw.data.get("timed_out"):
                shown = "not finished" if d.get("timed_out") else f"{r.seconds:.2f}"
                out.append(
                    f"| {server} | {label} | {shown} | | | | | stopped after {timeout:.0f} s |"
                )
                continue
            ratio = "1.00" if r is raw else f"**{raw.seconds / r.seconds:.2f}**"
            check = f"{d['users']:,} users, {d['groups']} groups, {d['members']:,} members"
            if "record_s" in d:
                check += (
                    f"; record_plan {d['record_s']:.2f} s + worker {d['worker_s']:.2f} s; "
                    f"{d['succeeded']:,}/{d['operations']:,} operations succeeded"
                )
            out.append(
                f"| {server} | {label} | {r.seconds:.2f} | {n / r.seconds:,.0f} | "
                f"{4 * n / r.seconds:,.0f} | {ratio} | {r.peak_rss_mib:,.0f} | {check} |"
            )
    out += ["", END, ""]
    return out
