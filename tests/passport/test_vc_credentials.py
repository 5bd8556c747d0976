"""SD-JWT VC credential types: build, present selectively, verify, check status."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from passport_support import AUD, NOW, NonceStore
from pydantic import ValidationError

from pasa.passport._jose import b64url_decode, public_jwk
from pasa.passport.errors import VerificationError
from pasa.passport.keys import KeyRing
from pasa.passport.sdjwt import SdJwt, held_disclosures, issue, present
from pasa.passport.status_list import StatusList, check_status, sign_status_list, verify_status_list
from pasa.passport.vc import (
    CREDENTIAL_TYPES,
    ENVELOPE_CLAIMS,
    NEVER_DISCLOSABLE,
    ClaimSet,
    CoreSkillsTrainingCredential,
    CstfSubject,
    DbsCredential,
    EmploymentCredential,
    IdentityCredential,
    OccupationalHealthCredential,
    ProfessionalRegistrationCredential,
    RightToWorkCredential,
    StatusReference,
    TrainingPlacementCredential,
    TrainingRecord,
    build_credential,
    verify_credential,
)

ISSUER = "https://trust-a.nhs.uk/passport"
STATUS_URI = "https://trust-a.nhs.uk/passport/status/1"
IAT = dt.datetime.fromtimestamp(NOW, dt.UTC)
D = dt.date(2030, 1, 6)
NAMES = {"given_name": "Ada", "family_name": "Lovelace"}

SAMPLES: list[ClaimSet] = [
    IdentityCredential(
        **NAMES,
        birthdate=dt.date(1990, 12, 10),
        nhs_number="9434765919",
        assurance_level="medium",
        verification_method="idsp",
        verified_on=D,
    ),
    EmploymentCredential(
        **NAMES,
        assignment_number="12345678-2",
        organisation_code="RR8",
        organisation_name="Leeds Teaching Hospitals NHS Trust",
        position_title="Specialty Registrar, Cardiology",
        staff_group="Medical and Dental",
        job_role="Specialty Registrar",
        assignment_category="fixed_term",
        start_date=dt.date(2029, 8, 1),
        end_date=dt.date(2031, 8, 5),
    ),
    RightToWorkCredential(
        **NAMES,
        right_to_work="time_limited",
        check_method="home_office_share_code",
        checked_on=D,
        expires_on=dt.date(2030, 6, 30),
        restrictions="No restriction on hours",
    ),
    DbsCredential(
        **NAMES,
        level="enhanced_with_barred_lists",
        workforce="adult_and_child",
        certificate_number="001234567890",
        issued_on=D,
        update_service=True,
    ),
    ProfessionalRegistrationCredential(
        **NAMES,
        regulator="GMC",
        registration_number="7654321",
        register_name="Full registration with a licence to practise",
        checked_on=D,
    ),
    CoreSkillsTrainingCredential(
        **NAMES,
        training=[
            TrainingRecord(
                subject=subject,
                completed_on=D,
                expires_on=D + dt.timedelta(days=3 * 365),
            )
            for subject in CstfSubject
        ],
    ),
    OccupationalHealthCredential(
        **NAMES, clearance="fit", assessed_on=D, epp_cleared=True, immunisations_complete=True
    ),
    TrainingPlacementCredential(
        **NAMES,
        gmc_number="7654321",
        national_training_number="NWE/030/123/C",
        programme="Cardiology",
        grade="ST4",
        local_office="NHS England North West",
        lead_employer_code="RBL",
        host_organisation_code="R0A",
        start_date=dt.date(2030, 2, 5),
        end_date=dt.date(2030, 8, 6),
    ),
]


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.new(IAT - dt.timedelta(days=1))


@pytest.fixture(scope="module")
def holder():  # type: ignore[no-untyped-def]
    from joserfc.jwk import ECKey

    return ECKey.generate_key("P-256", private=True)


def _build(ring: KeyRing, holder, claims: ClaimSet, idx: int = 5) -> str:  # type: ignore[no-untyped-def]
    return build_credential(
        claims,
        issuer=ISSUER,
        key=ring.current,
        holder_jwk=public_jwk(holder),
        status=StatusReference(STATUS_URI, idx),
        iat=IAT,
    )


def _verify(ring: KeyRing, text: str, **kwargs):  # type: ignore[no-untyped-def]
    nonces = NonceStore({"n"})
    return verify_credential(
        text,
        issuer_keys=ring.resolver(IAT, issuer=ISSUER),
        now=NOW + 5,
        audience=AUD,
        nonce_check=nonces.consume,
        **kwargs,
    )


def test_one_vct_per_check() -> None:
    assert len(CREDENTIAL_TYPES) == 8 == len({type(s).vct for s in SAMPLES})
    assert len(CstfSubject) == 11
    for cls in CREDENTIAL_TYPES.values():
        assert not (cls.disclosable | cls.disclosable_elements) & NEVER_DISCLOSABLE
        assert not set(cls.model_fields) & ENVELOPE_CLAIMS
        assert (cls.disclosable | cls.disclosable_elements) <= set(cls.model_fields)


@pytest.mark.parametrize("claims", SAMPLES, ids=lambda c: type(c).__name__)
def test_each_type_round_trips_with_everything_disclosed(
    ring: KeyRing, holder, claims: ClaimSet
) -> None:  # type: ignore[no-untyped-def]
    text = _build(ring, holder, claims)
    header = json.loads(b64url_decode(text.split(".")[0]))
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": ring.current.kid}
    payload = json.loads(b64url_decode(text.split(".")[1]))
    for name in ("iss", "iat", "exp", "vct", "cnf", "status"):
        assert name in payload
    for name in type(claims).disclosable:
        assert name not in payload
    shown = present(
        text, holder_key=holder, audience=AUD, nonce="n", iat=NOW, select=lambda _: True
    )
    result = _verify(ring, shown, expected_vct={type(claims).vct})
    assert result.vct == type(claims).vct and result.issuer == ISSUER
    assert result.status == StatusReference(STATUS_URI, 5)
    expected = claims.model_dump(mode="json", exclude_none=True)
    assert {k: result.claims[k] for k in expected} == expected


def test_personal_claims_stay_hidden_unless_chosen(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    employment = SAMPLES[1]
    text = _build(ring, holder, employment)
    shown = present(
        text, holder_key=holder, audience=AUD, nonce="n", iat=NOW, paths=[("family_name",)]
    )
    claims = _verify(ring, shown).claims
    assert claims["family_name"] == "Lovelace" and claims["organisation_code"] == "RR8"
    assert "given_name" not in claims and "assignment_number" not in claims


def test_training_subjects_are_disclosable_one_by_one(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    text = _build(ring, holder, SAMPLES[5])
    paths = {h.path for h in held_disclosures(text)}
    assert {("training", i) for i in range(11)} <= paths
    shown = present(
        text, holder_key=holder, audience=AUD, nonce="n", iat=NOW, paths=[("training", 3)]
    )
    training = _verify(ring, shown).claims["training"]
    assert [t["subject"] for t in training] == ["health_safety_welfare"]


def test_exp_is_capped_by_the_attested_fact(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    text = _build(ring, holder, SAMPLES[2])  # right to work expires 30 June 2030
    exp = json.loads(b64url_decode(text.split(".")[1]))["exp"]
    assert dt.datetime.fromtimestamp(exp, dt.UTC) == dt.datetime(2030, 6, 30, 23, tzinfo=dt.UTC)
    assert ring.current.signed_until is not None


def test_already_ended_fact_is_not_issued(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    ended = SAMPLES[2].model_copy(update={"expires_on": dt.date(2029, 1, 1)})
    with pytest.raises(ValueError):
        _build(ring, holder, ended)


def test_models_validate_their_input() -> None:
    with pytest.raises(ValidationError):
        ProfessionalRegistrationCredential(
            **NAMES,
            regulator="NMC",
            registration_number="1234567",
            register_name="RN",
            checked_on=D,
        )
    ProfessionalRegistrationCredential(
        **NAMES,
        regulator="NMC",
        registration_number="12A3456E",
        register_name="RN Adult",
        checked_on=D,
    )
    with pytest.raises(ValidationError):
        RightToWorkCredential(
            **NAMES, right_to_work="time_limited", check_method="idsp_digital", checked_on=D
        )
    with pytest.raises(ValidationError):
        DbsCredential(
            **NAMES,
            level="enhanced",
            workforce="adult",
            certificate_number="12",
            issued_on=D,
            update_service=False,
        )


def test_disclosable_status_or_exp_is_refused(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    from pasa.passport.sdjwt import SD

    sneaky = issue(
        {"iss": ISSUER, "exp": NOW + 60, "vct": "urn:x", "status": SD({"status_list": {}})},
        issuer_key=ring.current.private_key,
        kid=ring.current.kid,
        holder_jwk=public_jwk(holder),
    )
    shown = present(
        sneaky, holder_key=holder, audience=AUD, nonce="n", iat=NOW, select=lambda _: True
    )
    with pytest.raises(VerificationError) as caught:
        _verify(ring, shown)
    assert caught.value.code == "claim_not_disclosable"


def test_unexpected_vct_is_refused(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    shown = present(
        _build(ring, holder, SAMPLES[3]), holder_key=holder, audience=AUD, nonce="n", iat=NOW
    )
    with pytest.raises(VerificationError) as caught:
        _verify(ring, shown, expected_vct={EmploymentCredential.vct})
    assert caught.value.code == "vct_unexpected"


def test_untrusted_issuer_is_refused(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    shown = present(
        _build(ring, holder, SAMPLES[3]), holder_key=holder, audience=AUD, nonce="n", iat=NOW
    )
    with pytest.raises(VerificationError) as caught:
        verify_credential(
            shown,
            issuer_keys=ring.resolver(IAT, issuer="https://other-trust.nhs.uk"),
            now=NOW,
            audience=AUD,
            nonce_check=lambda n: True,
        )
    assert caught.value.code == "issuer_key_unknown"


@pytest.mark.parametrize(("value", "code"), [(1, "revoked"), (2, "suspended")])
def test_revoked_and_suspended_credentials_fail_the_status_check(
    ring: KeyRing,
    holder,
    value: int,
    code: str,  # type: ignore[no-untyped-def]
) -> None:
    text = _build(ring, holder, SAMPLES[1], idx=42)
    shown = present(text, holder_key=holder, audience=AUD, nonce="n", iat=NOW)
    result = _verify(ring, shown)
    status_list = StatusList(4096, 2)
    token_text = sign_status_list(
        status_list, uri=STATUS_URI, key=ring.current.private_key, kid=ring.current.kid, iat=NOW
    )
    token = verify_status_list(
        token_text, key=ring.current.public_key, expected_uri=STATUS_URI, now=NOW
    )
    assert result.status is not None
    check_status(token, result.status.claim())  # valid
    status_list.set(42, value)
    token_text = sign_status_list(
        status_list, uri=STATUS_URI, key=ring.current.private_key, kid=ring.current.kid, iat=NOW
    )
    token = verify_status_list(
        token_text, key=ring.current.public_key, expected_uri=STATUS_URI, now=NOW
    )
    with pytest.raises(VerificationError) as caught:
        check_status(token, result.status.claim())
    assert caught.value.code == code


def test_presentation_parses_as_sd_jwt(ring: KeyRing, holder) -> None:  # type: ignore[no-untyped-def]
    text = _build(ring, holder, SAMPLES[0])
    parsed = SdJwt.parse(text)
    assert parsed.kb_jwt is None and len(parsed.disclosures) >= 4
