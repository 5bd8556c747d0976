"""Rotation batch pages and the policy editor (issue 6), through the real application with
the real sign-in (dev sign-in, session cookie, CSRF), on SQLite and PostgreSQL.

The trust is the rotation service tests' one: the example policy, nine people provisioned
into SQLite target systems, the app's clock fixed before the August rotation.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from pasa.clock import FixedClock
from pasa.config import Settings
from pasa.hr.importer import import_extract
from pasa.policy.document import load_policy_file
from pasa.service import access, policy_edit, provisioning, rotation
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy
from pasa.web.app import create_app
from support import web_session
from support.web_session import csrf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hr"))

from esr_builder import extract_bytes, valid_row

REPO = Path(__file__).resolve().parents[2]
DAY0 = dt.date(2026, 7, 20)
ROTATION = dt.date(2026, 8, 5)
IMPORTER, APPROVER = "importer@nhs.net", "approver@nhs.net"
AUDITOR, OTHER_ADMIN, STAFF = "auditor@nhs.net", "ryj.admin@nhs.net", "person10@nhs.net"
PLATFORM = "platform.admin@nhs.net"  # the policy covers both trusts: only they may save it
THEATRES = {"Area_Of_Work": "Theatres", "Department_Code": "D300",
            "Department_Name": "Main Theatres", "Cost_Centre": "CC300"}  # fmt: skip


def doctor(n: int, **overrides: str) -> dict[str, str]:
    values = {
        "Staff_Group": "01",
        "Job_Role_Code": "01016",
        "Grade_Code": "ST3",
        "Position_Number": f"D{n:04d}",
        "Position_Title": "Specialty Registrar",
        "Occupation_Code": "M0A",
        "Registration_Body": "GMC",
        "Registration_Number": f"{7_000_000 + n}",
        "Assignment_End_Date": "04/08/2026",
        "Area_Of_Work": "Emergency Medicine",
        "Department_Code": "D200",
        "Department_Name": "Emergency Department",
        "Cost_Centre": "CC200",
        **overrides,
    }
    return valid_row(n, **values)


def hub_rows() -> list[dict[str, str]]:
    return [doctor(1), doctor(2), doctor(3), *(valid_row(n) for n in range(10, 16))]


def rotation_file() -> bytes:
    moved = {**THEATRES, "Grade_Code": "ST4", "Assignment_End_Date": "03/08/2027"}
    rows = hub_rows()
    rows[0] = doctor(1, Position_Number="D9001", **moved)
    rows[1] = doctor(2, Position_Number="D9002", **moved)
    return extract_bytes(rows)


@pytest.fixture
def trust(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.chdir(tmp_path)  # the example policy's target systems live under ./var
    with engine.begin() as conn:
        save_policy(
            conn, load_policy_file(REPO / "examples" / "policy.yaml"), source="t", actor="t"
        )
    day0 = tmp_path / "day0.csv"
    day0.write_bytes(extract_bytes(hub_rows()))
    import_extract(engine, day0, actor="hr", as_of=DAY0)
    provisioning.apply(engine, DAY0, actor="t")
    provisioning.execute(engine)
    for user in (IMPORTER, APPROVER):
        access.grant_role(engine, user, "org_admin", organisation="RXL", actor="t")
    access.grant_role(engine, AUDITOR, "auditor", organisation="RXL", actor="t")
    with engine.begin() as conn:
        conn.execute(
            s.organisation.insert().values(
                ods_code="RYJ", name="Another trust", created_at=dt.datetime.now(dt.UTC)
            )
        )
    access.grant_role(engine, OTHER_ADMIN, "org_admin", organisation="RYJ", actor="t")
    access.grant_role(engine, PLATFORM, "platform_admin", organisation=None, actor="t")
    return engine


@pytest.fixture
def app_for(trust: Engine) -> Iterator[object]:
    app = create_app(
        trust,
        clock=FixedClock(dt.datetime(2026, 7, 20, 9, 0, tzinfo=dt.UTC)),
        settings=Settings(dev_signin=True, session_secret="k" * 40, signin_rate_limit=0),
    )
    clients: list[TestClient] = []

    def sign_in(subject: str) -> TestClient:
        client = TestClient(app, base_url="https://testserver")
        client.__enter__()
        clients.append(client)
        web_session.sign_in(client, subject)
        return client

    yield sign_in
    for client in clients:
        client.__exit__(None, None, None)


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return html.unescape(found.group(1))


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def _upload(client: TestClient, data: bytes, *, name: str = "August 2026") -> object:
    token = csrf(client.get("/rotations").text)
    return client.post(
        "/rotations",
        data={"name": name, "effective_date": ROTATION.isoformat()},
        files={"file": ("rotation.csv", data, "text/csv")},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )


# --- rotations -------------------------------------------------------------------------------


def test_rotation_upload_preview_approve_and_cancel(trust: Engine, app_for: object) -> None:
    importer = app_for(IMPORTER)  # type: ignore[operator]
    done = _upload(importer, rotation_file())
    assert done.status_code == 303, done.text  # type: ignore[attr-defined]
    url = done.headers["location"]  # type: ignore[attr-defined]
    batch_id = int(re.search(r"/rotations/(\d+)", url).group(1))  # type: ignore[union-attr]

    page = importer.get(url)
    assert page.status_code == 200
    assert "imported as a batch" in page.text
    # The preview: the two moved doctors gain theatre access; per-target counts are shown.
    assert 'id="by-target"' in page.text
    assert page.text.count("/people/") == 2
    listing = importer.get("/rotations").text
    assert "August 2026" in listing and "Waiting for approval" in listing

    # Filtered by a target the doctors have no change in: nobody.
    doors = importer.get(f"{url.split('?')[0]}?target=no-such-target")
    assert doors.text.count("/people/") == 0

    # The importer may not approve their own batch: the service's refusal is shown.
    confirm = importer.get(f"/rotations/{batch_id}/approve")
    assert "Yes, approve the batch" in confirm.text
    refused = importer.post(
        f"/rotations/{batch_id}/approve", data={"csrf_token": csrf(confirm.text)}
    )
    assert refused.status_code == 409
    assert "someone else must approve it" in refused.text
    assert rotation.get_batch(trust, batch_id).status == "imported"

    approver = app_for(APPROVER)  # type: ignore[operator]
    confirm = approver.get(f"/rotations/{batch_id}/approve")
    approved = approver.post(
        f"/rotations/{batch_id}/approve", data={"csrf_token": csrf(confirm.text)}
    )
    assert approved.status_code == 200
    assert "The batch is approved" in approved.text
    batch = rotation.get_batch(trust, batch_id)
    assert (batch.status, batch.approved_by) == ("approved", APPROVER)
    assert APPROVER in approver.get("/rotations").text
    # Approved once: a second approval is refused.
    again = approver.post(f"/rotations/{batch_id}/approve", data={"csrf_token": csrf(confirm.text)})
    assert again.status_code == 409 and "approved once" in again.text

    # Cancelling needs a reason.
    form = approver.get(f"/rotations/{batch_id}/cancel")
    empty = approver.post(
        f"/rotations/{batch_id}/cancel", data={"csrf_token": csrf(form.text), "reason": " "}
    )
    assert empty.status_code == 422 and "Enter why the batch is cancelled" in empty.text
    cancelled = approver.post(
        f"/rotations/{batch_id}/cancel",
        data={"csrf_token": csrf(form.text), "reason": "Deanery sent a corrected list"},
    )
    assert cancelled.status_code == 200 and "Deanery sent a corrected list" in cancelled.text
    assert rotation.get_batch(trust, batch_id).status == "cancelled"
    with trust.connect() as conn:
        actions = list(
            conn.scalars(
                sa.select(s.audit_log.c.actor + ":" + s.audit_log.c.action).where(
                    s.audit_log.c.action.like("rotation.%")
                )
            )
        )
    assert actions == [
        f"{IMPORTER}:rotation.import",
        f"{APPROVER}:rotation.approve",
        f"{APPROVER}:rotation.cancel",
    ]


def test_rotation_upload_works_without_javascript(trust: Engine, app_for: object) -> None:
    """A plain HTML form posts the token as a multipart field, not a header: accepted; a form
    with a wrong token is refused and writes nothing."""
    importer = app_for(IMPORTER)  # type: ignore[operator]
    token = csrf(importer.get("/rotations").text)  # type: ignore[attr-defined]
    fields = {"name": "No JS", "effective_date": ROTATION.isoformat()}
    files = {"file": ("rotation.csv", rotation_file(), "text/csv")}
    forged = importer.post(  # type: ignore[attr-defined]
        "/rotations", data={**fields, "csrf_token": "forged"}, files=files, follow_redirects=False
    )
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert _count(trust, s.rotation_batch) == 0
    done = importer.post(  # type: ignore[attr-defined]
        "/rotations", data={**fields, "csrf_token": token}, files=files, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert _count(trust, s.rotation_batch) == 1


def test_rotation_upload_errors_are_specific_and_write_nothing(
    trust: Engine, app_for: object
) -> None:
    client = app_for(IMPORTER)  # type: ignore[operator]
    bad = extract_bytes([doctor(1, NI_Number="XX", Position_Number="D9001")])
    refused = _upload(client, bad)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    text = refused.text  # type: ignore[attr-defined]
    assert "nhsuk-error-summary" in text and "batch is all or nothing" in text
    assert 'id="rejected-rows"' in text and "NI_Number" in text
    missing = client.post(
        "/rotations",
        data={"name": "", "effective_date": "5/8/26"},
        files={"file": ("empty.csv", b"", "text/csv")},
        headers={"X-CSRF-Token": csrf(client.get("/rotations").text)},
    )
    assert missing.status_code == 422
    for message in ("Enter a name", "YYYY-MM-DD", "Choose the rotation file"):
        assert message in missing.text
    # Without the CSRF token the session's guard refuses it before the page sees it.
    forged = client.post(
        "/rotations",
        data={"name": "x", "effective_date": ROTATION.isoformat()},
        files={"file": ("r.csv", rotation_file(), "text/csv")},
    )
    assert forged.status_code == 403
    assert _count(trust, s.rotation_batch) == 0


def test_rotation_pages_are_for_the_identity_team_of_the_batch(
    trust: Engine, app_for: object
) -> None:
    importer = app_for(IMPORTER)  # type: ignore[operator]
    batch_id = int(
        re.search(
            r"/rotations/(\d+)", _upload(importer, rotation_file()).headers["location"]
        ).group(1)  # type: ignore[attr-defined,union-attr]
    )
    other = app_for(OTHER_ADMIN)  # type: ignore[operator]
    assert "August 2026" not in other.get("/rotations").text
    assert other.get(f"/rotations/{batch_id}").status_code == 404
    token = csrf(other.get("/rotations").text)
    assert other.get(f"/rotations/{batch_id}/approve").status_code == 404
    assert (
        other.post(f"/rotations/{batch_id}/approve", data={"csrf_token": token}).status_code == 404
    )
    # Another organisation's identity team cannot upload this organisation's movers either.
    assert _upload(other, rotation_file(), name="Theirs").status_code == 403  # type: ignore[attr-defined]
    auditor = app_for(AUDITOR)  # type: ignore[operator]
    seen = auditor.get(f"/rotations/{batch_id}")
    assert seen.status_code == 200 and "Approve this batch" not in seen.text
    token = csrf(auditor.get("/rotations").text)
    assert (
        auditor.post(f"/rotations/{batch_id}/approve", data={"csrf_token": token}).status_code
        == 403
    )
    staff = app_for(STAFF)  # type: ignore[operator]
    assert staff.get("/rotations").status_code == 403
    assert rotation.get_batch(trust, batch_id).status == "imported"


# --- the policy editor -------------------------------------------------------------------------


def _edited(text: str) -> str:
    """Registered nurses get the bank nurse role instead of the nurse role."""
    old = "  grant:\n  - nurse\n- key: bank-nurses"
    assert old in text
    return text.replace(old, "  grant:\n  - bank-nurse\n- key: bank-nurses")


def _preview(client: TestClient, text: str) -> tuple[object, str]:
    page = client.get("/policy")
    token = csrf(page.text)
    base = _hidden(page.text, "base_version")
    shown = client.post(
        "/policy/preview", data={"csrf_token": token, "policy": text, "base_version": base}
    )
    return shown, token


def test_preview_shows_gains_and_losses_and_writes_nothing(trust: Engine, app_for: object) -> None:
    client = app_for(IMPORTER)  # type: ignore[operator]
    current = policy_edit.active(trust)
    assert current is not None
    assert current.text in html.unescape(client.get("/policy").text)
    before = {t.name: _count(trust, t) for t in (s.policy_version, s.operation, s.audit_log)}
    shown, _token = _preview(client, _edited(current.text))
    assert shown.status_code == 200, shown.text  # type: ignore[attr-defined]
    text = shown.text  # type: ignore[attr-defined]
    assert 'id="gains-losses"' in text and 'id="operations-by-target"' in text
    assert "bank" in text.lower()
    # Six nurses gain and lose; nothing was written anywhere.
    assert text.count('<tr class="nhsuk-table__row">') >= 6
    after = {t.name: _count(trust, t) for t in (s.policy_version, s.operation, s.audit_log)}
    assert after == before


def test_preview_reports_every_problem_with_its_line(trust: Engine, app_for: object) -> None:
    client = app_for(IMPORTER)  # type: ignore[operator]
    current = policy_edit.active(trust)
    assert current is not None
    broken = current.text.replace("staff_group: '03'", "staf_group: '03'", 1)
    shown, _ = _preview(client, broken)
    assert shown.status_code == 422  # type: ignore[attr-defined]
    text = shown.text  # type: ignore[attr-defined]
    assert "nhsuk-error-summary" in text
    assert re.search(r"line \d+: rules\[\d+\] &#39;nurses&#39;: when", text), text
    assert "unknown attribute" in text and "Save as new version" not in text
    bad_yaml, _ = _preview(client, "version: 1\ntargets: [")
    assert "not valid YAML at line 2" in bad_yaml.text  # type: ignore[attr-defined]


def test_save_after_preview_and_refusals(trust: Engine, app_for: object) -> None:
    client = app_for(PLATFORM)  # type: ignore[operator]
    current = policy_edit.active(trust)
    assert current is not None
    edited = _edited(current.text)
    shown, token = _preview(client, edited)
    page = shown.text  # type: ignore[attr-defined]
    fields = {n: _hidden(page, n) for n in ("policy", "previewed_sha256", "base_version")}

    # A text other than the one previewed is refused (the hash is of the previewed text).
    tampered = client.post(
        "/policy/save",
        data={"csrf_token": token, **fields, "policy": edited + "\n# sneaked in\nbogus: 1\n"},
    )
    assert tampered.status_code == 409 and "not the text that was previewed" in tampered.text
    assert _count(trust, s.policy_version) == 1

    saved = client.post("/policy/save", data={"csrf_token": token, **fields})
    assert saved.status_code == 200 and "Saved as policy version 2" in saved.text
    active = policy_edit.active(trust)
    assert active is not None and active.version.id == 2 and active.version.loaded_by == PLATFORM
    with trust.connect() as conn:
        audited = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor).where(
                s.audit_log.c.action.in_(["policy.load", "policy.edit"]),
                s.audit_log.c.actor == PLATFORM,
            )
        ).all()
    assert sorted(a for a, _ in audited) == ["policy.edit", "policy.load"]

    # The same preview again is now stale: the active version changed since.
    stale = client.post("/policy/save", data={"csrf_token": token, **fields})
    assert stale.status_code == 409 and "after your preview of version 1" in stale.text
    assert _count(trust, s.policy_version) == 2

    # The history shows the change against the previous version.
    diff = client.get("/policy/versions/2")
    assert diff.status_code == 200
    assert re.search(r"removed: </span><code>  - nurse</code>", diff.text), diff.text
    assert "added: </span><code>  - bank-nurse</code>" in diff.text
    assert client.get("/policy/versions/99").status_code == 404


def test_policy_authorization(trust: Engine, app_for: object) -> None:
    auditor = app_for(AUDITOR)  # type: ignore[operator]
    page = auditor.get("/policy")
    assert page.status_code == 200 and "read only" in page.text
    assert "Preview changes" not in page.text
    token = csrf(page.text)
    current = policy_edit.active(trust)
    assert current is not None
    edited = _edited(current.text)
    for path, data in (
        ("/policy/preview", {"policy": edited, "base_version": "1"}),
        (
            "/policy/save",
            {"policy": edited, "previewed_sha256": policy_edit.digest(edited), "base_version": "1"},
        ),
    ):
        assert auditor.post(path, data={"csrf_token": token, **data}).status_code == 403
    assert auditor.get("/policy/versions/1").status_code == 200
    staff = app_for(STAFF)  # type: ignore[operator]
    assert staff.get("/policy").status_code == 403
    # Another organisation's identity team sees the totals but none of this trust's people.
    other = app_for(OTHER_ADMIN)  # type: ignore[operator]
    shown, _ = _preview(other, edited)
    text = shown.text  # type: ignore[attr-defined]
    assert 'id="gains-losses"' not in text
    assert re.search(r"\d+ more people in other organisations are affected", text)
    assert _count(trust, s.policy_version) == 1


def test_one_trusts_admin_previews_but_cannot_change_another_trusts_policy(
    trust: Engine, app_for: object
) -> None:
    """The policy governs RXL and RYJ alike: RXL's identity team sees the what-if for its own
    people but may not save; the platform administrator may."""
    rxl = app_for(IMPORTER)  # type: ignore[operator]
    current = policy_edit.active(trust)
    assert current is not None
    edited = _edited(current.text)
    shown, token = _preview(rxl, edited)
    page = shown.text  # type: ignore[attr-defined]
    assert 'action="/policy/save"' not in page and "only a platform administrator" in page
    forced = rxl.post(  # type: ignore[attr-defined]
        "/policy/save",
        data={
            "csrf_token": token,
            "policy": edited,
            "previewed_sha256": policy_edit.digest(edited),
            "base_version": str(current.version.id),
        },
    )
    assert forced.status_code == 403 and "platform administrator" in forced.text
    assert _count(trust, s.policy_version) == 1
    platform = app_for(PLATFORM)  # type: ignore[operator]
    shown, token = _preview(platform, edited)
    assert 'action="/policy/save"' in shown.text  # type: ignore[attr-defined]


# --- properties of the editor's validation (pure: no database) ------------------------------


@given(st.text(max_size=400))
def test_validation_never_crashes_and_always_explains(text: str) -> None:
    document, errors = policy_edit.validate(text)
    assert (document is None) == bool(errors)
    assert all(isinstance(e, str) and e for e in errors)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=30)))
def test_the_previewed_hash_ignores_how_the_browser_ends_lines(lines: list[str]) -> None:
    assert policy_edit.digest("\r\n".join(lines)) == policy_edit.digest("\n".join(lines))
