"""Check credentials end to end: recorded checks (and ESR registration) issued over
OpenID4VCI, verified, not issued once expired, and revoked when the person leaves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from test_issuer_flow import START, Holder, Issuer, _verify, end_assignment
from test_issuer_flow import issuer as issuer  # the fixture

from pasa.service import checks
from pasa.service import passport_issuer as pi
from pasa.store import schema as s

TODAY = START.date()
CHECKS: dict[str, dict[str, Any]] = {
    "right_to_work": {
        "right_to_work": "time_limited",
        "check_method": "home_office_share_code",
        "checked_on": "2025-01-02",
        "expires_on": "2027-06-30",
    },
    "dbs": {
        "level": "enhanced_with_barred_lists",
        "workforce": "adult_and_child",
        "certificate_number": "001234567890",
        "issued_on": "2025-01-02",
        "update_service": True,
    },
    "occupational_health": {"clearance": "fit", "assessed_on": "2025-01-03"},
    "core_skills_training": {
        "training": [
            {"subject": "fire_safety", "completed_on": "2026-01-05", "expires_on": "2028-01-05"}
        ]
    },
    "professional_registration": {
        "regulator": "NMC",
        "registration_number": "12A3456E",
        "register_name": "Nurses' part of the register",
        "checked_on": "2026-10-01",
    },
    "training_placement": {
        "gmc_number": "7654321",
        "programme": "Foundation Programme",
        "grade": "FY1",
        "local_office": "NHS England North West",
        "lead_employer_code": "RXL",
        "host_organisation_code": "RXL",
        "start_date": "2026-08-05",
        "end_date": "2027-08-03",
    },
}


def collect(issuer: Issuer, config: str, holder: Holder) -> Any:
    token = issuer.access_token()
    return issuer.credential(token, holder.proof(issuer.nonce(), iat=issuer.clock.now()), config)


def test_every_check_kind_is_issued_and_verifies(issuer: Issuer) -> None:
    for kind, attributes in CHECKS.items():
        checks.record(issuer.engine, "E1001", kind, attributes, actor="hr", now=START)
    offer = issuer.offer()
    assert set(offer.configuration_ids) == {"employment", "identity", *CHECKS}
    meta = issuer.client.get("/.well-known/openid-credential-issuer").json()
    assert set(CHECKS) <= set(meta["credential_configurations_supported"])
    holder = Holder.new()
    for kind, attributes in CHECKS.items():
        response = collect(issuer, kind, holder)
        assert response.status_code == 200, (kind, response.text)
        (item,) = response.json()["credentials"]
        verified = _verify(issuer, item["credential"], holder)
        assert verified["vct"] == f"urn:nhs:pasa:passport:{kind}:1"
        claims = verified["claims"]
        assert claims["given_name"] == "Ada" and claims["family_name"] == "Lovelace"
        for name, value in attributes.items():
            if name != "training":
                assert claims[name] == value, (kind, name)
    rtw = next(r for r in _rows(issuer) if r.vct.endswith("right_to_work:1"))
    # exp follows the right to work's own expiry (end of 30 June 2027, London).
    assert pi._aware(rtw.expires_at) == dt.datetime(2027, 6, 30, 23, 0, tzinfo=dt.UTC)


def _rows(issuer: Issuer) -> list[Any]:
    with issuer.engine.connect() as conn:
        return list(conn.execute(sa.select(s.passport_credential)).all())


def test_an_expired_check_is_not_issued(issuer: Issuer) -> None:
    lapsed = {**CHECKS["right_to_work"], "expires_on": "2026-11-23"}
    checks.record(issuer.engine, "E1001", "right_to_work", lapsed, actor="hr", now=START)
    assert "right_to_work" not in issuer.offer().configuration_ids
    new = pi.create_offer(
        issuer.engine,
        issuer.person_id,
        issuer=pi.issuer_identifier(),
        actor="t",
        now=START,
        kek=issuer.kek,
        configuration_ids=["employment", "right_to_work"],
    )
    token = issuer.token(new.pre_authorized_code, new.tx_code).json()["access_token"]
    holder = Holder.new()
    refused = issuer.credential(
        token, holder.proof(issuer.nonce(), iat=issuer.clock.now()), "right_to_work"
    )
    assert refused.status_code == 400
    assert refused.json()["reason"] == "nothing_to_attest"


def test_leaving_revokes_the_check_credentials(issuer: Issuer) -> None:
    checks.record(issuer.engine, "E1001", "dbs", CHECKS["dbs"], actor="hr", now=START)
    holder = Holder.new()
    assert collect(issuer, "dbs", holder).status_code == 200
    end_assignment(issuer.engine, dt.date(2026, 12, 31))
    assert (
        pi.run_lifecycle(
            issuer.engine,
            dt.date(2026, 12, 30),
            actor="t",
            now=START,
            issuer="https://pasa.test",
            kek=issuer.kek,
        )
        == {}
    )
    counts = pi.run_lifecycle(
        issuer.engine,
        dt.date(2026, 12, 31),
        actor="t",
        now=START,
        issuer="https://pasa.test",
        kek=issuer.kek,
    )
    assert counts == {"revoked": 1}
    (row,) = [r for r in _rows(issuer) if r.vct.endswith("dbs:1")]
    assert row.state == "revoked" and row.state_reason == "leaver"


@pytest.mark.parametrize(
    ("body", "number", "issued"),
    [("nmc", "12A3456E", True), ("hcpc", "PA12345", True), ("gmc", "12345", False)],
)
def test_professional_registration_from_esr(
    issuer: Issuer, body: str, number: str, issued: bool
) -> None:
    with issuer.engine.begin() as conn:
        conn.execute(
            s.person_identifier.insert().values(
                person_id=issuer.person_id, scheme=body, value=number, issuer="", created_at=START
            )
        )
    offered = "professional_registration" in issuer.offer().configuration_ids
    assert offered is issued
    if not issued:
        return
    holder = Holder.new()
    response = collect(issuer, "professional_registration", holder)
    assert response.status_code == 200, response.text
    claims = _verify(issuer, response.json()["credentials"][0]["credential"], holder)["claims"]
    assert claims["regulator"] == body.upper() and claims["registration_number"] == number


def test_a_newer_recorded_registration_wins_over_esr(issuer: Issuer) -> None:
    with issuer.engine.begin() as conn:
        conn.execute(
            s.person_identifier.insert().values(
                person_id=issuer.person_id,
                scheme="nmc",
                value="99Z9999Z",
                issuer="",
                created_at=START - dt.timedelta(days=400),
            )
        )
    checks.record(
        issuer.engine,
        "E1001",
        "professional_registration",
        CHECKS["professional_registration"],
        actor="hr",
        now=START,
    )
    holder = Holder.new()
    response = collect(issuer, "professional_registration", holder)
    (item,) = response.json()["credentials"]
    claims = _verify(issuer, item["credential"], holder)["claims"]
    assert claims["registration_number"] == "12A3456E"
