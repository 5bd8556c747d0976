"""SD-JWT VC credential types of the Digital Staff Passport: one ``vct`` per check. Pure.

Each claim set is a Pydantic model with its ``vct``, which of its claims are selectively
disclosable (personal data: names, identifiers, dates of birth, health-related flags) and the
longest it may be valid. The attested facts a receiving organisation pre-provisions from
(organisation, role, levels, dates) are plain claims. :func:`build_credential` signs one as an
SD-JWT VC (``typ: dc+sd-jwt``) with ``iss``, ``iat``, ``exp``, ``vct``, ``cnf`` and a
Token Status List reference, none of which is ever selectively disclosable;
:func:`verify_credential` applies the SD-JWT VC rules on top of :func:`~pasa.passport.sdjwt.verify`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pasa.clock import LONDON
from pasa.passport.errors import VerificationError
from pasa.passport.keys import IssuerKey
from pasa.passport.sdjwt import (
    SD,
    VC_TYP,
    IssuerKeyResolver,
    VerificationPolicy,
    epoch,
    issue,
    verify,
)

VCT_PREFIX = "urn:nhs:pasa:passport:"
# SD-JWT VC: these claims MUST NOT be selectively disclosable.
NEVER_DISCLOSABLE = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "aka_vcts", "status"}
)
# Claims build_credential sets itself; no claim set may carry a field of these names.
ENVELOPE_CLAIMS = NEVER_DISCLOSABLE | {"iat", "sub", "_sd", "_sd_alg", "..."}
VC_POLICY = VerificationPolicy(typ=VC_TYP, not_disclosable=NEVER_DISCLOSABLE)

_ODS = r"^[A-Z0-9]{3,6}$"
_NAME = Field(min_length=1, max_length=200)


class ClaimSet(BaseModel):
    """Base of every credential's claims: the staff member's names, both disclosable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vct: ClassVar[str]
    disclosable: ClassVar[frozenset[str]] = frozenset({"given_name", "family_name"})
    # Array claims whose *elements* are disclosable one by one.
    disclosable_elements: ClassVar[frozenset[str]] = frozenset()
    max_lifetime: ClassVar[dt.timedelta] = dt.timedelta(days=365)

    given_name: str = _NAME
    family_name: str = _NAME

    def natural_expiry(self) -> dt.date | None:
        """The last day the attested fact holds, when the fact itself ends (else None)."""
        return None


class IdentityCredential(ClaimSet):
    """Identity checked to a GPG 45 profile (by the employer or an IDSP)."""

    vct: ClassVar[str] = VCT_PREFIX + "identity:1"
    disclosable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "birthdate", "nhs_number"}
    )
    max_lifetime: ClassVar[dt.timedelta] = dt.timedelta(days=3 * 365)

    birthdate: dt.date
    nhs_number: str | None = Field(default=None, pattern=r"^\d{10}$")
    assurance_level: Literal["low", "medium", "high", "very_high"]
    verification_method: Literal["in_person", "idsp", "nhs_login"]
    verified_on: dt.date


class EmploymentCredential(ClaimSet):
    """One ESR assignment: organisation, position, staff group, job role and dates."""

    vct: ClassVar[str] = VCT_PREFIX + "employment:1"
    disclosable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "assignment_number"}
    )

    assignment_number: str = Field(min_length=1, max_length=30)
    organisation_code: str = Field(pattern=_ODS)
    organisation_name: str = _NAME
    position_title: str = _NAME
    position_number: str | None = None
    staff_group: str = _NAME
    job_role: str = _NAME
    occupation_code: str | None = None
    assignment_category: Literal["substantive", "fixed_term", "bank", "honorary", "locum"]
    start_date: dt.date
    end_date: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> EmploymentCredential:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self

    def natural_expiry(self) -> dt.date | None:
        return self.end_date


class RightToWorkCredential(ClaimSet):
    """Right to work in the UK; a time-limited right carries its expiry."""

    vct: ClassVar[str] = VCT_PREFIX + "right_to_work:1"
    disclosable: ClassVar[frozenset[str]] = frozenset({"given_name", "family_name", "restrictions"})

    right_to_work: Literal["unlimited", "time_limited"]
    check_method: Literal["idsp_digital", "home_office_share_code", "manual_document"]
    checked_on: dt.date
    expires_on: dt.date | None = None
    restrictions: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _expiry(self) -> RightToWorkCredential:
        if (self.right_to_work == "time_limited") != (self.expires_on is not None):
            raise ValueError("a time-limited right to work has an expiry; an unlimited one none")
        return self

    def natural_expiry(self) -> dt.date | None:
        return self.expires_on


class DbsCredential(ClaimSet):
    """A DBS check: level, workforce, certificate and Update Service subscription."""

    vct: ClassVar[str] = VCT_PREFIX + "dbs:1"
    disclosable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "certificate_number"}
    )
    max_lifetime: ClassVar[dt.timedelta] = dt.timedelta(days=3 * 365)

    level: Literal["basic", "standard", "enhanced", "enhanced_with_barred_lists"]
    workforce: Literal["adult", "child", "adult_and_child", "other"]
    certificate_number: str = Field(pattern=r"^\d{12}$")
    issued_on: dt.date
    update_service: bool


class Regulator(StrEnum):
    GMC = "GMC"
    NMC = "NMC"
    HCPC = "HCPC"


_REGISTRATION_NUMBER = {
    Regulator.GMC: re.compile(r"^\d{7}$"),
    Regulator.NMC: re.compile(r"^\d{2}[A-Z]\d{4}[A-Z]$"),
    Regulator.HCPC: re.compile(r"^[A-Z]{2}\d{5,6}$"),
}


class ProfessionalRegistrationCredential(ClaimSet):
    """Registration with the GMC, NMC or HCPC, checked against the register."""

    vct: ClassVar[str] = VCT_PREFIX + "professional_registration:1"
    disclosable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "registration_number", "has_conditions"}
    )

    regulator: Regulator
    registration_number: str
    register_name: str = _NAME  # e.g. "Full registration with a licence to practise"
    registration_status: Literal["registered"] = "registered"
    has_conditions: bool = False
    checked_on: dt.date
    renewal_due: dt.date | None = None

    @model_validator(mode="after")
    def _number(self) -> ProfessionalRegistrationCredential:
        if not _REGISTRATION_NUMBER[self.regulator].fullmatch(self.registration_number):
            raise ValueError(f"not a {self.regulator.value} registration number")
        return self

    def natural_expiry(self) -> dt.date | None:
        return self.renewal_due


class CstfSubject(StrEnum):
    """The 11 subjects of the Core Skills Training Framework (Skills for Health)."""

    CONFLICT_RESOLUTION = "conflict_resolution"
    EQUALITY_DIVERSITY_HUMAN_RIGHTS = "equality_diversity_human_rights"
    FIRE_SAFETY = "fire_safety"
    HEALTH_SAFETY_WELFARE = "health_safety_welfare"
    INFECTION_PREVENTION_CONTROL = "infection_prevention_control"
    INFORMATION_GOVERNANCE = "information_governance_data_security"
    MOVING_HANDLING = "moving_handling"
    PREVENTING_RADICALISATION = "preventing_radicalisation"
    RESUSCITATION = "resuscitation"
    SAFEGUARDING_ADULTS = "safeguarding_adults"
    SAFEGUARDING_CHILDREN = "safeguarding_children"


class TrainingRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: CstfSubject
    level: int | None = Field(default=None, ge=1, le=3)
    completed_on: dt.date
    expires_on: dt.date

    @model_validator(mode="after")
    def _dates(self) -> TrainingRecord:
        if self.expires_on < self.completed_on:
            raise ValueError("training expires before it was completed")
        return self


class CoreSkillsTrainingCredential(ClaimSet):
    """CSTF completions; each subject record is disclosable on its own."""

    vct: ClassVar[str] = VCT_PREFIX + "core_skills_training:1"
    disclosable_elements: ClassVar[frozenset[str]] = frozenset({"training"})

    training: list[TrainingRecord] = Field(min_length=1, max_length=33)

    @model_validator(mode="after")
    def _unique(self) -> CoreSkillsTrainingCredential:
        keys = [(r.subject, r.level) for r in self.training]
        if len(keys) != len(set(keys)):
            raise ValueError("each subject and level appears once")
        return self


class OccupationalHealthCredential(ClaimSet):
    """Occupational health clearance: the outcome only, never clinical detail."""

    vct: ClassVar[str] = VCT_PREFIX + "occupational_health:1"
    disclosable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "epp_cleared", "immunisations_complete"}
    )

    clearance: Literal["fit", "fit_with_adjustments"]
    assessed_on: dt.date
    epp_cleared: bool = False  # exposure-prone procedures
    immunisations_complete: bool = False
    review_due: dt.date | None = None

    def natural_expiry(self) -> dt.date | None:
        return self.review_due


class TrainingPlacementCredential(ClaimSet):
    """A doctor in training's placement: programme, grade, lead employer and host."""

    vct: ClassVar[str] = VCT_PREFIX + "training_placement:1"
    disclosable: ClassVar[frozenset[str]] = frozenset(
        {"given_name", "family_name", "gmc_number", "national_training_number"}
    )

    gmc_number: str = Field(pattern=r"^\d{7}$")
    national_training_number: str | None = Field(default=None, max_length=30)
    programme: str = _NAME  # specialty / programme name
    grade: str = Field(pattern=r"^(FY[12]|CT[1-3]|ST[1-8]|StR|IMT[1-3]|CST[12]|GPST[1-4])$")
    local_office: str = _NAME  # e.g. "NHS England North West"
    lead_employer_code: str = Field(pattern=_ODS)
    host_organisation_code: str = Field(pattern=_ODS)
    start_date: dt.date
    end_date: dt.date

    @model_validator(mode="after")
    def _dates(self) -> TrainingPlacementCredential:
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self

    def natural_expiry(self) -> dt.date | None:
        return self.end_date


CREDENTIAL_TYPES: dict[str, type[ClaimSet]] = {
    cls.vct: cls
    for cls in (
        IdentityCredential,
        EmploymentCredential,
        RightToWorkCredential,
        DbsCredential,
        ProfessionalRegistrationCredential,
        CoreSkillsTrainingCredential,
        OccupationalHealthCredential,
        TrainingPlacementCredential,
    )
}


@dataclass(frozen=True, slots=True)
class StatusReference:
    """Where a credential's status lives: entry ``idx`` of the Status List at ``uri``."""

    uri: str
    idx: int

    def claim(self) -> dict[str, Any]:
        return {"status_list": {"idx": self.idx, "uri": self.uri}}


def disclosable_claims(claims: ClaimSet) -> dict[str, Any]:
    """The claim set as JSON with its disclosable parts wrapped in :class:`SD`."""
    data = claims.model_dump(mode="json", exclude_none=True)
    clash = (type(claims).disclosable | type(claims).disclosable_elements) & NEVER_DISCLOSABLE
    clash |= set(data) & ENVELOPE_CLAIMS
    if clash:  # pragma: no cover - a programming error in a model definition
        raise ValueError(f"{sorted(clash)} cannot be credential subject claims")
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name in type(claims).disclosable_elements and isinstance(value, list):
            value = [SD(element) for element in value]
        out[name] = SD(value) if name in type(claims).disclosable else value
    return out


def _end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=LONDON)


def build_credential(
    claims: ClaimSet,
    *,
    issuer: str,
    key: IssuerKey,
    holder_jwk: Mapping[str, Any],
    status: StatusReference,
    iat: dt.datetime,
    lifetime: dt.timedelta | None = None,
    max_decoys: int = 2,
) -> str:
    """Sign ``claims`` as an SD-JWT VC, key-bound to ``holder_jwk``.

    ``exp`` is the earliest of ``iat + lifetime`` (default: the type's maximum) and the end of
    the attested fact's last day (London), e.g. a time-limited right to work. The signing
    key remembers the latest ``exp`` so rotation keeps publishing it until then.
    """
    span = min(lifetime or type(claims).max_lifetime, type(claims).max_lifetime)
    expires = iat + span
    natural = claims.natural_expiry()
    if natural is not None:
        expires = min(expires, _end_of_day(natural))
    if expires <= iat:
        raise ValueError("the attested fact has already ended; nothing to issue")
    payload: dict[str, Any] = {
        "iss": issuer,
        "iat": epoch(iat),
        "exp": epoch(expires),
        "vct": type(claims).vct,
        "status": status.claim(),
        **disclosable_claims(claims),
    }
    sd_jwt = issue(
        payload,
        issuer_key=key.private_key,
        holder_jwk=holder_jwk,
        kid=key.kid,
        typ=VC_TYP,
        max_decoys=max_decoys,
    )
    key.note_signed(expires)
    return sd_jwt.serialize()


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """A verified SD-JWT VC presentation: its type, issuer, disclosed claims and status ref."""

    vct: str
    issuer: str
    claims: dict[str, Any]
    status: StatusReference | None
    expires: int


def verify_credential(
    presentation: str,
    *,
    issuer_keys: IssuerKeyResolver,
    now: dt.datetime | int,
    audience: str,
    nonce_check: Callable[[str], bool],
    expected_vct: Collection[str] | None = None,
    policy: VerificationPolicy = VC_POLICY,
) -> VerifiedCredential:
    """SD-JWT VC verification: RFC 9901 (key binding required) plus ``vct``/``iss``/status.

    Which issuer may issue which ``vct`` is the trust registry's decision (the resolver
    returning None for an untrusted issuer); status is checked separately against the
    Status List Token (:func:`pasa.passport.status_list.check_status`).
    """
    result = verify(
        presentation,
        issuer_keys=issuer_keys,
        now=now,
        policy=policy,
        audience=audience,
        nonce_check=nonce_check,
    )
    claims = result.claims
    vct, iss = claims.get("vct"), claims.get("iss")
    if not isinstance(vct, str) or not vct:
        raise VerificationError("vct_missing", "The credential has no type (vct).")
    if expected_vct is not None and vct not in expected_vct:
        raise VerificationError("vct_unexpected", "The credential is not of a requested type.")
    if not isinstance(iss, str) or not iss:
        raise VerificationError("missing_claim", "The credential does not name its issuer (iss).")
    reference = None
    status = claims.get("status")
    if status is not None:
        entry = status.get("status_list") if isinstance(status, dict) else None
        idx = entry.get("idx") if isinstance(entry, dict) else None
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0 or not isinstance(uri, str):
            raise VerificationError(
                "status_reference_malformed", "The credential's status reference is malformed."
            )
        reference = StatusReference(uri, idx)
    exp = claims.get("exp")
    return VerifiedCredential(vct, iss, claims, reference, int(exp) if exp is not None else 0)
