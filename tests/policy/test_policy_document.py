"""Loading the policy YAML: the example loads; every mistake gets one specific sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasa.domain.errors import ConfigurationError
from pasa.policy.document import PolicyDocument, load_policy_file, parse_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy.yaml"

HEAD = """
version: 1
targets:
  - {key: ad, name: Directory, connector: sql_table}
  - {key: epr, name: EPR, connector: sql_table, username_template: "{first_name}.{last_name}"}
roles:
  - key: nurse
    entitlements:
      - {target: epr, app_roles: [Nurse]}
"""


def test_example_policy_loads_and_round_trips() -> None:
    doc = load_policy_file(EXAMPLE)
    assert {t.key for t in doc.targets} == {"ad", "epr", "doors", "pacs"}
    assert doc.birthright == ("ad",)
    assert 15 <= len(doc.rules) <= 25
    assert doc.target("pacs").connector == "manual"
    assert doc.target("doors").username_template == "{employee_number}"
    # what the store keeps (model_dump) validates back to the same document
    assert PolicyDocument.model_validate(doc.model_dump(mode="json")) == doc


def test_defaults() -> None:
    doc = parse_policy(HEAD, "t.yaml")
    ad = doc.target("ad")
    assert ad.username_template == "{first_initial}{last_name}"
    assert ad.username_max_length == 20
    assert "manager_employee_number" in ad.kept_attributes()
    assert doc.rules == () and doc.birthright == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("version: 2\ntargets: []", "t.yaml: version must be 1, not 2"),
        ("- just a list", "t.yaml: a policy is a mapping"),
        ("version: 1\ntargets: [{key: ad", "t.yaml: not valid YAML at line"),
        ("version: 1", "t.yaml: missing required field 'targets'"),
        ("version: 1\ntargets: []\nrulez: []", "t.yaml: unknown field 'rulez' (known: version,"),
        (
            "version: 1\ntargets: [{key: ad, name: x}]",
            "targets[0] 'ad': missing required field 'connector'",
        ),
        (
            "version: 1\ntargets: [{key: ad, name: x, connector: sql_table, colour: red}]",
            "targets[0] 'ad': unknown field 'colour' (known: key, name, connector,",
        ),
        (
            "version: 1\ntargets: [{key: ad, name: x, connector: sql_table,"
            " username_template: '{surname}'}]",
            "targets[0] 'ad': username_template uses unknown placeholder {surname}",
        ),
        (
            "version: 1\ntargets: [{key: ad, name: x, connector: sql_table,"
            " settings: {bind_password: hunter2}}]",
            "settings.bind_password looks like a secret",
        ),
        (
            "version: 1\ntargets: [{key: ad, name: x, connector: sql_table,"
            " attributes: [shoe_size]}]",
            "targets[0] 'ad': unknown account attribute 'shoe_size'",
        ),
        (
            "version: 1\ntargets: [{key: ad, name: x, connector: sql_table},"
            " {key: ad, name: y, connector: memory}]",
            "targets[1] 'ad': duplicate key (also targets[0])",
        ),
        (
            HEAD + "  - key: doctor\n    entitlements: [{target: pcs}]\n",
            "roles[1] 'doctor': entitlements[0] names unknown target 'pcs' (known: ad, epr)",
        ),
        (
            HEAD + "  - key: doctor\n    entitlements: [{target: epr, groupz: [a]}]\n",
            "roles[1] 'doctor': entitlements[0]: unknown field 'groupz'",
        ),
        (
            HEAD + "rules:\n  - {key: nurses, when: {staff_group: '03'}, grant: [nurze]}\n",
            "rules[0] 'nurses': grants unknown role 'nurze' (known: nurse)",
        ),
        (
            HEAD + "rules:\n  - {key: nurses, when: {staff_group: '03'}, grant: []}\n",
            "rules[0] 'nurses': grant: ",
        ),
        (
            HEAD + "rules:\n  - {key: nurses, when: {staf_group: '03'}, grant: [nurse]}\n",
            "t.yaml: rules[0] 'nurses': when: unknown attribute 'staf_group' (known: organisation,"
            " staff_group, job_role_code,",
        ),
        (
            HEAD + "rules:\n  - {key: nurses, when: {staff_group: 03}, grant: [nurse]}\n",
            "rules[0] 'nurses': when.staff_group: staff_group values must be quoted strings",
        ),
        (
            HEAD + "rules:\n  - key: n\n    when: {all: [{primary: true}, {grade: x}]}\n"
            "    grant: [nurse]\n",
            "rules[0] 'n': when.all[1]: unknown attribute 'grade'",
        ),
        (
            HEAD + "rules:\n  - {key: n, when: {category: {in: [Banks]}}, grant: [nurse]}\n",
            "when.category.in: category value 'Banks' is not one of Bank,",
        ),
        (
            HEAD + "rules:\n  - {key: n, when: {staff_group: '03'}, grant: [nurse]}\n"
            "  - {key: n, when: {staff_group: '01'}, grant: [nurse]}\n",
            "rules[1] 'n': duplicate key (also rules[0])",
        ),
        (
            HEAD + "rules:\n  - {key: n, grant: [nurse]}\n",
            "rules[0] 'n': missing required field 'when'",
        ),
        (HEAD + "birthright: [door]\n", "birthright[0]: unknown target 'door' (known: ad, epr)"),
    ],
)
def test_bad_documents_get_specific_messages(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_policy(text, "t.yaml")
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message  # one sentence, not a pydantic dump


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="policy file not found"):
        load_policy_file(tmp_path / "nope.yaml")
