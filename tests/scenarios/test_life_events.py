"""Life events with time travel, checked in the target systems themselves.

Each row of ``SCENARIOS`` is a story: on each listed day, HR changes are made to the trust's
extract, the day is run (import, apply, execute — then the plan must be empty), and the
expectations for that day are checked by reading the target databases directly. Every
scenario runs on SQLite and PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from pasa.clock import FixedClock, local_instant
from pasa.service import provisioning
from pasa.service.access_grants import add_grant, revoke_grant
from pasa.store import schema as s

from .harness import Trust, policy_doc

Step = Callable[[Trust], None]
Check = Callable[[Trust, dt.date], None]

BASE = dt.date(2026, 6, 1)


def d(n: int) -> dt.date:
    return BASE + dt.timedelta(days=n)


def K(n: int, number: int = 1, org: str = "RXL") -> str:
    """The trust's key of an assignment: employee number 10000000 + n."""
    emp = f"{10_000_000 + n:08d}"
    return f"{org}/{emp if number == 1 else f'{emp}-{number}'}"


@dataclass(frozen=True)
class Day:
    """One day of a scenario: HR changes, then a run (scheduler tick when ``clock``)."""

    day: dt.date
    do: Sequence[Step] = ()
    expect: Sequence[Check] = ()
    clock: dt.datetime | None = None
    run: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    days: Sequence[Day]
    marks: Sequence[pytest.MarkDecorator] = field(default=())


# -- steps ------------------------------------------------------------------------------------


def hire(n: int, start: dt.date, profile: str = "nurse", **kw: Any) -> Step:
    def step(t: Trust) -> None:
        t.hire(n, start, profile, **kw)

    return step


def change(key: str, **kw: str) -> Step:
    return lambda t: t.change(key, **kw)


def end(key: str, last_day: dt.date) -> Step:
    return lambda t: t.end(key, last_day)


def suspend(key: str, suspended: bool = True) -> Step:
    return lambda t: t.suspend(key, suspended)


def drop(key: str) -> Step:
    return lambda t: t.drop(key)


def rename(n: int, last: str) -> Step:
    return lambda t: t.rename(n, last=last)


def grant(label: str, n: int, target: str, kind: str, value: str, start: dt.date,
          until: dt.date | None) -> Step:  # fmt: skip
    def step(t: Trust) -> None:
        t.grants[label] = add_grant(
            t.engine,
            person_id=t.person_id(n),
            target=target,
            kind=kind,
            value=value,
            valid_from=start,
            valid_to=until,
            justification="audit project",
            requested_by="requester",
            approved_by="approver",
        )

    return step


def revoke(label: str) -> Step:
    return lambda t: revoke_grant(t.engine, t.grants[label], actor="approver")


def remember(target: str, user: str) -> Check:
    """Note the account's external id (the target's own identity of the account)."""

    def check(t: Trust, day: dt.date) -> None:
        t.memo[f"{target}/{user}"] = str(_account(t, target, user)[1]["external_id"])

    return check


# -- checks -----------------------------------------------------------------------------------


def _account(
    t: Trust, target: str, user: str
) -> tuple[bool, dict[str, str | None], frozenset[str]]:
    accounts = t.state()[target]
    assert user in accounts, f"{target}: no account {user!r} (have {sorted(accounts)})"
    return accounts[user]


def has(target: str, user: str, *values: str, enabled: bool | None = None) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        is_enabled, _, members = _account(t, target, user)
        missing = set(values) - members
        assert not missing, f"{day} {target}/{user} lacks {missing} (has {sorted(members)})"
        if enabled is not None:
            assert is_enabled is enabled, f"{day} {target}/{user} enabled={is_enabled}"

    return check


def lacks(target: str, user: str, *values: str) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        _, _, members = _account(t, target, user)
        extra = set(values) & members
        assert not extra, f"{day} {target}/{user} still has {extra}"

    return check


def exactly(target: str, user: str, values: Sequence[str], *, enabled: bool) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        is_enabled, _, members = _account(t, target, user)
        assert members == set(values), f"{day} {target}/{user}: {sorted(members)}"
        assert is_enabled is enabled, f"{day} {target}/{user} enabled={is_enabled}"

    return check


def attrs(target: str, user: str, **expected: str | None) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        _, attributes, _ = _account(t, target, user)
        got = {k: attributes.get(k) for k in expected}
        assert got == expected, f"{day} {target}/{user}: {got}"

    return check


def users(target: str, *names: str) -> Check:
    """Exactly these accounts exist in ``target``."""

    def check(t: Trust, day: dt.date) -> None:
        assert set(t.state()[target]) == set(names), f"{day} {target}: {sorted(t.state()[target])}"

    return check


def nothing_anywhere(t: Trust, day: dt.date) -> None:
    state = t.state()
    assert all(not accounts for accounts in state.values()), f"{day}: {state}"


def same_account(target: str, user: str) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        external_id = _account(t, target, user)[1]["external_id"]
        remembered = [v for k, v in t.memo.items() if k.startswith(f"{target}/")]
        assert external_id in remembered, f"{day} {target}/{user} is a new account"

    return check


def employee(target: str, number: str, values: Sequence[str], *, enabled: bool) -> Check:
    """The one account of employee ``number`` in ``target``, whatever its username."""

    def check(t: Trust, day: dt.date) -> None:
        found = [(u, a) for u, a in t.state()[target].items() if a[1]["employee_number"] == number]
        assert len(found) == 1, f"{day} {target}: accounts of {number}: {found}"
        username, (is_enabled, _, members) = found[0]
        assert members == set(values), f"{day} {target}/{username}: {sorted(members)}"
        assert is_enabled is enabled, f"{day} {target}/{username} enabled={is_enabled}"

    return check


def people(count: int) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        assert t.count(s.person) == count

    return check


def rerun_changes_nothing(t: Trust, day: dt.date) -> None:
    before_state, before_rows = t.state(), t.row_counts()
    t.run(day)
    assert provisioning.apply(t.engine, day, actor="scenario").operations == 0
    provisioning.execute(t.engine)
    assert t.state() == before_state
    after_rows = t.row_counts()
    # A second import of the same file is recorded; nothing is planned or executed again.
    for table in ("operation", "account", "account_grant", "person", "assignment", "manual_task"):
        assert after_rows[table] == before_rows[table], table


def explains_prehire(n: int, at: dt.date) -> Check:
    def check(t: Trust, day: dt.date) -> None:
        found = provisioning.explain_person(t.engine, f"{10_000_000 + n:08d}", at)
        assert len(found) == 1
        text = found[0][1].render_text()
        assert "pre-hire" in text, text

    return check


def what_if_maternity_for_ward7(t: Trust, day: dt.date) -> None:
    """A new rule (ward 7 gets maternity): what-if lists the gainers and writes nothing."""
    changed = policy_doc(
        t.root,
        "  - key: ward7-maternity\n    when: {department_code: D100}\n    grant: [maternity]\n",
    )
    before_state, before_rows = t.state(), t.row_counts()
    result = provisioning.what_if(t.engine, day, policy=changed)
    gainer, other = t.person_id(1), t.person_id(2)
    assert ("epr", "app role Maternity") in result.gains.get(gainer, ())
    assert ("doors", "door zone maternity-unit") in result.gains.get(gainer, ())
    assert other not in result.gains and not result.losses
    assert result.baseline.operations == ()
    assert t.row_counts() == before_rows
    assert t.state() == before_state


# -- the table --------------------------------------------------------------------------------

NURSE_AD = ("GG-All-Staff", "GG-Nursing")
NURSE_DOORS = ("main-entrance", "wards")
A, E, C = "anurse", "alice.nurse", "10000001"  # Alice Nurse's usernames in ad, epr, doors

SCENARIOS: list[Scenario] = [
    Scenario(
        "joiner pre-provisioned disabled 5 days before start, enabled on the start date",
        [
            Day(d(0), [hire(1, d(10))], [nothing_anywhere]),
            Day(d(4), expect=[nothing_anywhere]),
            Day(d(5), expect=[exactly("ad", A, NURSE_AD, enabled=False), users("epr")]),
            Day(d(9), expect=[exactly("ad", A, NURSE_AD, enabled=False)]),
            Day(
                d(10),
                expect=[
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("epr", E, ["Nurse"], enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "joiner outside the pre-hire window gets nothing yet",
        [
            Day(d(0), [hire(1, d(30))], [nothing_anywhere]),
            Day(d(24), expect=[nothing_anywhere]),
            Day(d(25), expect=[has("ad", A, enabled=False), users("epr"), users("doors")]),
        ],
    ),
    Scenario(
        "door zones only from the start date",
        [
            Day(d(0), [hire(1, d(3))], [has("ad", A, enabled=False)]),
            Day(d(2), expect=[users("doors")]),
            Day(d(3), expect=[exactly("doors", C, NURSE_DOORS, enabled=True)]),
        ],
    ),
    Scenario(
        "late-keyed joiner (start date already past) provisioned at once",
        [
            Day(
                d(0),
                [hire(1, d(-10))],
                [
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("epr", E, ["Nurse"], enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "mover: new access on the move date, old epr role kept 7 days, old door at once",
        [
            Day(d(0), [hire(1, d(-100), dept="ED1")], [has("epr", E, "ED-Board")]),
            Day(
                d(10),
                [change(K(1), dept="MAT")],
                [
                    has("epr", E, "Nurse", "Maternity", "ED-Board", enabled=True),
                    exactly("doors", C, [*NURSE_DOORS, "maternity-unit"], enabled=True),
                    attrs("ad", A, department="Maternity Unit"),
                ],
            ),
            Day(d(16), expect=[has("epr", E, "ED-Board")]),
            Day(d(17), expect=[exactly("epr", E, ["Nurse", "Maternity"], enabled=True)]),
        ],
    ),
    Scenario(
        "mover to a post with fewer rights",
        [
            Day(d(0), [hire(1, d(-100))], [exactly("ad", A, NURSE_AD, enabled=True)]),
            Day(
                d(10),
                [change(K(1), profile="admin")],
                [
                    exactly("ad", A, ["GG-All-Staff", "GG-Admin"], enabled=True),
                    exactly("epr", E, ["Nurse", "Patient-Admin"], enabled=True),
                    exactly("doors", C, ["main-entrance"], enabled=True),
                    attrs("ad", A, job_title="Receptionist"),
                ],
            ),
            Day(d(17), expect=[exactly("epr", E, ["Patient-Admin"], enabled=True)]),
        ],
    ),
    Scenario(
        "mover whose old access is still justified by a second assignment",
        [
            Day(
                d(0),
                [hire(1, d(-100)), hire(1, d(-50), number=2, category="Bank", dept="ED1")],
                [has("ad", A, "GG-Nursing", "GG-Bank", "GG-All-Staff")],
            ),
            Day(d(10), [change(K(1), profile="admin")], [has("epr", E, "Nurse", "Patient-Admin")]),
            Day(
                d(30),
                expect=[
                    exactly(
                        "ad", A, ["GG-All-Staff", "GG-Admin", "GG-Bank", "GG-Nursing"], enabled=True
                    ),
                    exactly("epr", E, ["Nurse", "Patient-Admin", "ED-Board"], enabled=True),
                    exactly("doors", C, ["main-entrance", "wards", "emergency-dept"], enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "attribute change (department name, job title, manager) updated in place",
        [
            Day(
                d(0),
                [hire(1, d(-100)), hire(2, d(-900), "admin", first="Mary", last="Manager")],
                [remember("ad", A), attrs("ad", A, manager_employee_number=None)],
            ),
            Day(
                d(5),
                [
                    change(
                        K(1),
                        Department_Name="Ward 7 (Acute Medicine)",
                        Position_Title="Senior Staff Nurse",
                        Supervisor_Assignment_Number="10000002",
                    )
                ],
                [
                    users("ad", A, "mmanager"),
                    same_account("ad", A),
                    attrs(
                        "ad",
                        A,
                        department="Ward 7 (Acute Medicine)",
                        job_title="Senior Staff Nurse",
                        manager_employee_number="10000002",
                    ),
                    attrs("epr", E, job_title="Senior Staff Nurse"),
                    exactly("ad", A, NURSE_AD, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "name change renames the ad account and never creates a new one",
        [
            Day(d(0), [hire(1, d(-100))], [remember("ad", A), remember("epr", E)]),
            Day(
                d(5),
                [rename(1, "Smith")],
                [
                    users("ad", "asmith"),
                    same_account("ad", "asmith"),
                    exactly("ad", "asmith", NURSE_AD, enabled=True),
                    attrs("ad", "asmith", last_name="Smith", display_name="Alice Smith"),
                    users("epr", E),  # epr does not rename: same username, new attributes
                    attrs("epr", E, last_name="Smith"),
                    people(1),
                ],
            ),
            Day(d(6), expect=[users("ad", "asmith")]),
        ],
    ),
    Scenario(
        "leaver disabled at the end of the last day; groups and door zones removed",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10))]),
            Day(d(10), expect=[exactly("ad", A, NURSE_AD, enabled=True)]),
            Day(
                d(11),
                expect=[
                    exactly("ad", A, [], enabled=False),
                    exactly("epr", E, [], enabled=False),
                    exactly("doors", C, [], enabled=False),
                ],
            ),
        ],
    ),
    Scenario(
        "leaver dropped from the full extract is ended the day before the import",
        [
            Day(d(0), [hire(1, d(-100)), hire(2, d(-100), first="Bob", last="Other")]),
            Day(
                d(10),
                [drop(K(1))],
                [
                    exactly("ad", A, [], enabled=False),
                    exactly("ad", "bother", NURSE_AD, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "late-keyed leaver (end date in the past) disabled at once",
        [
            Day(d(0), [hire(1, d(-100))], [has("ad", A, enabled=True)]),
            Day(
                d(10),
                [end(K(1), d(5))],
                [exactly("ad", A, [], enabled=False), exactly("doors", C, [], enabled=False)],
            ),
        ],
    ),
    Scenario(
        "leaver deleted from ad after 30 days' retention (still there on day 29)",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10))]),
            Day(d(11), expect=[has("ad", A, enabled=False)]),
            Day(d(40), expect=[has("ad", A, enabled=False)]),  # disabled 29 days
            Day(
                d(41),
                expect=[users("ad"), has("epr", E, enabled=False), has("doors", C, enabled=False)],
            ),
        ],
    ),
    Scenario(
        "rehire within retention re-enables the same account",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10))], [remember("ad", A)]),
            Day(d(11), expect=[has("ad", A, enabled=False)]),
            Day(
                d(20),
                [hire(1, d(20), number=2)],
                [
                    users("ad", A),
                    same_account("ad", A),
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                    people(1),
                ],
            ),
        ],
    ),
    Scenario(
        "rehire after deletion gets an account with the same username, no new identity",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10))]),
            Day(d(11), expect=[has("ad", A, enabled=False)]),
            Day(d(41), expect=[users("ad")]),
            Day(d(50), [hire(1, d(60), number=2)], [users("ad"), people(1)]),
            Day(d(55), expect=[exactly("ad", A, NURSE_AD, enabled=False)]),
            Day(
                d(60), expect=[users("ad", A), exactly("ad", A, NURSE_AD, enabled=True), people(1)]
            ),
        ],
    ),
    Scenario(
        "retire and return: end, then a new assignment a week later",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10)), hire(1, d(18), number=2)]),
            Day(
                d(11), expect=[has("ad", A, enabled=False), exactly("doors", C, [], enabled=False)]
            ),
            Day(d(17), expect=[has("ad", A, enabled=False)]),
            Day(
                d(18),
                expect=[
                    users("ad", A),
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("epr", E, ["Nurse"], enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "suspension disables and removes door zones but keeps groups",
        [
            Day(d(0), [hire(1, d(-100))]),
            Day(
                d(10),
                [suspend(K(1))],
                [
                    exactly("ad", A, NURSE_AD, enabled=False),
                    exactly("epr", E, ["Nurse"], enabled=False),
                    exactly("doors", C, [], enabled=False),
                ],
            ),
        ],
    ),
    Scenario(
        "return from suspension re-enables and restores door zones",
        [
            Day(d(0), [hire(1, d(-100))]),
            Day(d(10), [suspend(K(1))], [exactly("doors", C, [], enabled=False)]),
            Day(
                d(20),
                [suspend(K(1), False)],
                [
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("epr", E, ["Nurse"], enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "two concurrent assignments: access is the union",
        [
            Day(
                d(0),
                [hire(1, d(-100)), hire(1, d(-100), "admin", number=2, dept="ED1")],
                [
                    users("ad", A),
                    exactly("ad", A, [*NURSE_AD, "GG-Admin"], enabled=True),
                    exactly("epr", E, ["Nurse", "Patient-Admin", "ED-Board"], enabled=True),
                    exactly("doors", C, [*NURSE_DOORS, "emergency-dept"], enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "ending one of two assignments removes only what it alone justified",
        [
            Day(
                d(0),
                [
                    hire(1, d(-100)),
                    hire(1, d(-100), "admin", number=2, dept="ED1"),
                    end(K(1, 2), d(10)),
                ],
            ),
            Day(
                d(11),
                expect=[
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                    # epr keeps what only the ended post justified for its handover window
                    exactly("epr", E, ["Nurse", "Patient-Admin", "ED-Board"], enabled=True),
                ],
            ),
            Day(d(17), expect=[has("epr", E, "Patient-Admin", "ED-Board")]),
            Day(d(18), expect=[exactly("epr", E, ["Nurse"], enabled=True)]),
        ],
    ),
    Scenario(
        "bank worker expiry",
        [
            Day(
                d(0),
                [hire(1, d(-100), category="Bank", end=d(10))],
                [exactly("ad", A, ["GG-Bank", "GG-Nursing"], enabled=True)],
            ),
            Day(d(10), expect=[has("ad", A, enabled=True)]),
            Day(
                d(11),
                expect=[
                    exactly("ad", A, [], enabled=False),
                    exactly("doors", C, [], enabled=False),
                ],
            ),
        ],
    ),
    Scenario(
        "fixed-term expiry",
        [
            Day(d(0), [hire(1, d(-100), category="Fixed Term Temp", end=d(10))]),
            Day(d(10), expect=[exactly("ad", A, NURSE_AD, enabled=True)]),
            Day(
                d(11),
                expect=[exactly("ad", A, [], enabled=False), exactly("epr", E, [], enabled=False)],
            ),
        ],
    ),
    Scenario(
        "fixed-term extension removes nothing",
        [
            Day(d(0), [hire(1, d(-100), category="Fixed Term Temp", end=d(10))]),
            Day(d(5), [change(K(1), Assignment_End_Date="31/12/2026")]),
            Day(
                d(11),
                expect=[
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("epr", E, ["Nurse"], enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                ],
            ),
            Day(d(40), expect=[exactly("ad", A, NURSE_AD, enabled=True)]),
        ],
    ),
    Scenario(
        "time-bound grant added, and removed after its end date",
        [
            Day(d(0), [hire(1, d(-100))]),
            Day(
                d(1),
                [grant("g", 1, "epr", "app_role", "Research-Viewer", d(5), d(10))],
                [exactly("epr", E, ["Nurse"], enabled=True)],
            ),
            Day(d(5), expect=[exactly("epr", E, ["Nurse", "Research-Viewer"], enabled=True)]),
            Day(d(10), expect=[has("epr", E, "Research-Viewer")]),
            Day(d(11), expect=[exactly("epr", E, ["Nurse"], enabled=True)]),
        ],
    ),
    Scenario(
        "time-bound grant revoked early",
        [
            Day(d(0), [hire(1, d(-100))]),
            Day(
                d(1),
                [grant("g", 1, "ad", "group", "GG-Audit", d(0), d(30))],
                [has("ad", A, "GG-Audit")],
            ),
            Day(d(5), [revoke("g")], [exactly("ad", A, NURSE_AD, enabled=True)]),
        ],
    ),
    Scenario(
        "a request does not outlive employment",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10))]),
            Day(
                d(1),
                [grant("g", 1, "epr", "app_role", "Research-Viewer", d(1), d(100))],
                [has("epr", E, "Research-Viewer")],
            ),
            Day(d(10), expect=[has("epr", E, "Research-Viewer", enabled=True)]),
            Day(
                d(11),
                expect=[exactly("epr", E, [], enabled=False), exactly("ad", A, [], enabled=False)],
            ),
        ],
    ),
    Scenario(
        "cross-organisation transfer: one person, one account, organisation updated",
        [
            Day(
                dt.date(2026, 7, 20),
                [
                    hire(1, d(-300), end=dt.date(2026, 7, 31)),
                    hire(1, dt.date(2026, 8, 1), org="RXN", employee=101),
                ],
                [remember("ad", A), attrs("ad", A, organisation="RXL")],
            ),
            Day(
                dt.date(2026, 7, 31),
                expect=[
                    users("ad", A),
                    has("ad", A, enabled=True),
                    attrs("ad", A, organisation="RXL"),
                ],
            ),
            Day(
                dt.date(2026, 8, 1),
                expect=[
                    users("ad", A),
                    same_account("ad", A),
                    exactly("ad", A, NURSE_AD, enabled=True),
                    attrs("ad", A, organisation="RXN", employee_number="10000101"),
                    users("epr", E),
                    people(1),
                ],
            ),
        ],
    ),
    Scenario(
        "rotation-day mover: doctor in training changes department on the first Wednesday",
        [
            Day(
                dt.date(2026, 8, 4),
                [hire(1, dt.date(2025, 8, 6), "doctor", first="Dan", last="Trainee")],
                [exactly("epr", "dan.trainee", ["Clinician"], enabled=True)],
            ),
            Day(
                dt.date(2026, 8, 5),
                [
                    change(
                        K(1),
                        dept="ED1",
                        Grade_Code="FY2",
                        Job_Role_Code="01015",
                        Position_Title="Foundation Year 2 Doctor",
                    )
                ],
                [
                    exactly("epr", "dan.trainee", ["Clinician", "ED-Board"], enabled=True),
                    exactly(
                        "doors",
                        C,
                        ["main-entrance", "wards", "doctors-mess", "emergency-dept"],
                        enabled=True,
                    ),
                    exactly(
                        "ad",
                        "dtrainee",
                        ["GG-All-Staff", "GG-Medical", "GG-Trainees"],
                        enabled=True,
                    ),
                    attrs(
                        "ad",
                        "dtrainee",
                        job_title="Foundation Year 2 Doctor",
                        department="Emergency Department",
                    ),
                ],
            ),
        ],
    ),
    Scenario(
        "DST autumn: assignment ending on the Saturday the clocks go back, at local midnight",
        [
            Day(dt.date(2026, 10, 20), [hire(1, d(-100), end=dt.date(2026, 10, 24))]),
            # 22:59 UTC = 23:59 BST on Saturday 24 October: still the last day.
            Day(
                dt.date(2026, 10, 24),
                clock=dt.datetime(2026, 10, 24, 22, 59, tzinfo=dt.UTC),
                expect=[has("ad", A, *NURSE_AD, enabled=True)],
            ),
            # 23:30 UTC on the 24th is 00:30 BST on Sunday 25 October: the day after.
            Day(
                dt.date(2026, 10, 25),
                clock=dt.datetime(2026, 10, 24, 23, 30, tzinfo=dt.UTC),
                expect=[
                    exactly("ad", A, [], enabled=False),
                    exactly("doors", C, [], enabled=False),
                ],
            ),
        ],
    ),
    Scenario(
        "DST spring: ending on the last Saturday of March and starting the next day",
        [
            Day(
                dt.date(2027, 3, 20),
                [
                    hire(1, d(-100), end=dt.date(2027, 3, 27)),
                    hire(2, dt.date(2027, 3, 28), first="Bob", last="Joiner"),
                ],
            ),
            Day(
                dt.date(2027, 3, 27),
                clock=local_instant(dt.date(2027, 3, 27), dt.time(23, 59)),
                expect=[has("ad", A, enabled=True), has("ad", "bjoiner", enabled=False)],
            ),
            # 00:30 on Sunday 28 March, local (GMT) — clocks go forward at 01:00.
            Day(
                dt.date(2027, 3, 28),
                clock=local_instant(dt.date(2027, 3, 28), dt.time(0, 30)),
                expect=[
                    exactly("ad", A, [], enabled=False),
                    exactly("ad", "bjoiner", NURSE_AD, enabled=True),
                    exactly("doors", "10000002", NURSE_DOORS, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "re-running the same day twice changes nothing in the targets",
        [
            Day(
                d(0),
                [hire(1, d(-100)), hire(2, d(3), first="Bob", last="Joiner")],
                [rerun_changes_nothing],
            ),
            Day(d(3), expect=[rerun_changes_nothing, has("ad", "bjoiner", enabled=True)]),
        ],
    ),
    Scenario(
        "explain for a future date names the pre-hire window",
        [
            Day(d(0), [hire(1, d(20))], [nothing_anywhere, explains_prehire(1, d(16))]),
        ],
    ),
    Scenario(
        "what-if of a rule change lists the gainers and writes nothing",
        [
            Day(
                d(0),
                [hire(1, d(-100)), hire(2, d(-100), dept="ED1", first="Bob", last="Other")],
                [what_if_maternity_for_ward7],
            ),
        ],
    ),
    Scenario(
        "two joiners with the same name get distinct accounts; one leaving spares the other",
        [
            Day(
                d(0),
                [hire(1, d(-10)), hire(2, d(-5)), end(K(2), d(10))],
                [users("ad", A, "anurse2"), users("epr", E, "alice.nurse2")],
            ),
            Day(
                d(11),
                expect=[
                    employee("ad", "10000001", NURSE_AD, enabled=True),
                    employee("ad", "10000002", [], enabled=False),
                    users("ad", A, "anurse2"),
                ],
            ),
        ],
    ),
    Scenario(
        "offer withdrawn before the start date: the pre-hire access goes at once",
        [
            Day(
                d(6),
                [hire(1, d(10)), hire(2, d(-100), first="Bob", last="Other")],
                [exactly("ad", A, NURSE_AD, enabled=False)],
            ),
            # Absent from the next full extract: the assignment ends (the day before) before
            # it ever started, so nothing justifies the pre-hire groups any more.
            Day(
                d(7), [drop(K(1))], [exactly("ad", A, [], enabled=False), users("epr", "bob.other")]
            ),
            Day(d(10), expect=[exactly("ad", A, [], enabled=False), users("epr", "bob.other")]),
        ],
    ),
    Scenario(
        "start date postponed beyond the window: pre-hire groups removed, account kept",
        [
            Day(d(6), [hire(1, d(10))], [exactly("ad", A, NURSE_AD, enabled=False)]),
            Day(
                d(7),
                [change(K(1), Assignment_Start_Date="01/08/2026")],
                [exactly("ad", A, [], enabled=False), users("ad", A)],
            ),
            Day(d(10), expect=[exactly("ad", A, [], enabled=False), users("epr"), users("doors")]),
            Day(
                dt.date(2026, 8, 1),
                expect=[
                    exactly("ad", A, NURSE_AD, enabled=True),
                    exactly("doors", C, NURSE_DOORS, enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "pre-hire joiner whose post and name change before the start: renamed, still disabled",
        [
            Day(d(6), [hire(1, d(10))], [remember("ad", A)]),
            Day(
                d(7),
                [change(K(1), profile="admin"), rename(1, "Smith")],
                [
                    users("ad", "asmith"),
                    same_account("ad", "asmith"),
                    exactly("ad", "asmith", ["GG-All-Staff", "GG-Admin"], enabled=False),
                ],
            ),
            Day(
                d(10),
                expect=[
                    exactly("ad", "asmith", ["GG-All-Staff", "GG-Admin"], enabled=True),
                    has("epr", "alice.smith", "Patient-Admin", enabled=True),
                    exactly("doors", C, ["main-entrance"], enabled=True),
                ],
            ),
        ],
    ),
    Scenario(
        "post changed before the start date: the never-held old post grants nothing",
        [
            Day(d(6), [hire(1, d(10))], [exactly("ad", A, NURSE_AD, enabled=False)]),
            Day(d(7), [change(K(1), profile="admin")], [users("epr")]),
            # Day one: only the post they actually start in (no "handover" of the nurse post
            # they never held).
            Day(d(10), expect=[exactly("epr", E, ["Patient-Admin"], enabled=True)]),
        ],
    ),
    Scenario(
        "late-keyed assignment entirely in the past creates nothing",
        [Day(d(0), [hire(1, d(-30), end=d(-5))], [nothing_anywhere])],
    ),
    Scenario(
        "suspended member of staff who leaves loses the groups the suspension kept",
        [
            Day(d(0), [hire(1, d(-100))]),
            Day(d(5), [suspend(K(1))], [exactly("ad", A, NURSE_AD, enabled=False)]),
            Day(
                d(9),
                [end(K(1), d(8))],
                [
                    exactly("ad", A, [], enabled=False),
                    exactly("epr", E, [], enabled=False),
                    exactly("doors", C, [], enabled=False),
                ],
            ),
        ],
    ),
    Scenario(
        "retention counts from the latest disable: rehired, left again, deleted 30 days later",
        [
            Day(d(0), [hire(1, d(-100)), end(K(1), d(10))]),
            Day(d(11), expect=[has("ad", A, enabled=False)]),
            Day(d(20), [hire(1, d(20), number=2, end=d(25))], [has("ad", A, enabled=True)]),
            Day(d(26), expect=[exactly("ad", A, [], enabled=False)]),
            Day(d(41), expect=[has("ad", A, enabled=False)]),  # 30 days after the first
            Day(d(55), expect=[has("ad", A, enabled=False)]),
            Day(d(56), expect=[users("ad"), has("epr", E, enabled=False)]),
        ],
    ),
    Scenario(
        "late-keyed mover: a move effective in the past applies on the day it is keyed",
        [
            Day(d(0), [hire(1, d(-100))]),
            Day(
                d(10),
                [change(K(1), dept="ED1")],
                [has("epr", E, "ED-Board", "Nurse"), has("doors", C, "emergency-dept")],
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(sc, id=sc.name, marks=sc.marks) for sc in SCENARIOS],
)
def test_life_event(trust: Trust, scenario: Scenario) -> None:
    days = [day.day for day in scenario.days]
    assert days == sorted(days), "scenario days must be in order"
    for day in scenario.days:
        for step in day.do:
            step(trust)
        if day.clock is not None:
            assert trust.tick(FixedClock(day.clock)) == day.day
        elif day.run:
            trust.run(day.day)
        for check in day.expect:
            check(trust, day.day)


def test_scenario_table_is_large_enough() -> None:
    assert len(SCENARIOS) >= 32
    assert len({sc.name for sc in SCENARIOS}) == len(SCENARIOS)


def test_target_rows_are_read_from_the_target_databases(trust: Trust) -> None:
    """The harness reads the targets' own tables: a change made there is seen."""
    trust.hire(1, d(-1))
    trust.run(d(0))
    engine = sa.create_engine(f"sqlite:///{trust.root}/ad.db")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET enabled = 0"))
    engine.dispose()
    assert trust.state()["ad"][A][0] is False
