"""`pasa explain`: why a person has access, and why a rule did not give them more."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from policy_factories import TODAY, assignment, person

from pasa.domain.model import AssignmentCategory, AssignmentStatus, PersonView
from pasa.policy import compile_policy, explain, load_policy_file

POLICY = compile_policy(
    load_policy_file(Path(__file__).resolve().parents[2] / "examples" / "policy.yaml")
)


def admin_clerk() -> PersonView:
    return person(
        5,
        assignment(
            "10000005",
            pos={
                "staff_group": "08",
                "job_role_code": "08003",
                "area_of_work": "Finance",
                "title": "Finance Clerk",
                "position_number": "P0808",
            },
        ),
        first_name="Siân",
        last_name="Jones",
    )


def test_why_lists_rule_role_assignment_and_position() -> None:
    result = explain(admin_clerk(), POLICY, TODAY, target="ad")
    finance = next(g for g in result.grants if g.value == "GG-Finance")
    (reason,) = finance.reasons
    assert (reason.rule, reason.role, reason.organisation, reason.assignment_number) == (
        "finance",
        "finance",
        "RXL",
        "10000005",
    )
    assert (reason.position_number, reason.position_title) == ("P0808", "Finance Clerk")
    assert all(g.target == "ad" for g in result.grants)
    text = result.render_text()
    assert "account on ad" in text
    assert "rule 'finance' -> role 'finance': assignment 10000005 at RXL" in text
    assert "position P0808 'Finance Clerk'" in text


def test_why_not_names_the_first_failing_condition() -> None:
    result = explain(admin_clerk(), POLICY, TODAY, target="epr")
    nurses = next(w for w in result.why_not if w.rule == "nurses")
    assert nurses.misses[0].failure == "staff_group is '08', rule needs '03'"
    assert "epr" in nurses.targets
    # rules that give nothing on epr are not listed
    assert all("epr" in w.targets for w in result.why_not)
    assert "staff_group is '08', rule needs '03'" in result.render_text()


def test_no_active_assignment_is_said_plainly() -> None:
    leaver = person(9, assignment(end_date=dt.date(2026, 10, 31)))
    result = explain(leaver, POLICY, TODAY, target="ad")
    assert result.accounts == () and result.grants == ()
    assert "no active assignment on 2026-11-24" in result.notes
    assert any(w.note == "no active assignment on 2026-11-24" for w in result.why_not)
    assert "no active assignment on 2026-11-24" in result.render_text()


def test_suspension_is_noted() -> None:
    suspended = person(4, assignment(status=AssignmentStatus.SUSPENDED))
    result = explain(suspended, POLICY, TODAY)
    assert result.accounts and not any(a.enabled for a in result.accounts)
    assert "(held disabled)" in result.render_text()
    assert any("suspended" in n for n in result.notes)
    nurses = next(w for w in result.why_not if w.rule == "nurses")
    assert "suspended" in nurses.misses[0].failure


def test_failures_show_plain_values() -> None:
    bank = person(6, assignment(category=AssignmentCategory.BANK))
    result = explain(bank, POLICY, TODAY, target="epr")
    nurses = next(w for w in result.why_not if w.rule == "nurses")
    assert nurses.misses[0].failure == "category is 'Bank', rule needs none of ['Bank', 'Honorary']"


def test_as_dict_is_json_ready() -> None:
    result = explain(admin_clerk(), POLICY, TODAY)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["person_id"] == 5 and data["at"] == "2026-11-24"
    assert {a["target"] for a in data["accounts"]} == {"ad", "doors"}
    assert data["why_not"] and "condition" in data["why_not"][0]
