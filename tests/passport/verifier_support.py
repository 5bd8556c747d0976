"""A small issuer world for verifier tests: keys, credentials, a status list, a registry."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc.jwk import ECKey

from pasa.passport._jose import public_jwk
from pasa.passport.errors import VerificationError
from pasa.passport.keys import IssuerKey, jwks_resolver
from pasa.passport.openid4vp import (
    QUERIES,
    PresentationResponse,
    VerifiedPresentations,
    client_id,
    verify_presentations,
)
from pasa.passport.sdjwt import present
from pasa.passport.status_list import (
    Status,
    StatusList,
    StatusListToken,
    sign_status_list,
    verify_status_list,
)
from pasa.passport.trust import TrustedIssuer, TrustRegistry
from pasa.passport.vc import (
    EmploymentCredential,
    IdentityCredential,
    ProfessionalRegistrationCredential,
    StatusReference,
    build_credential,
)

ISSUER = "https://trust-a.nhs.uk"
STATUS_URI = f"{ISSUER}/passport/status/list-1"
RESPONSE_URI = "https://trust-b.nhs.uk/passport/verifier/response"
CLIENT_ID = client_id(RESPONSE_URI)
NOW = dt.datetime(2030, 3, 17, 9, 0, tzinfo=dt.UTC)
NAMES = {"given_name": "Ada", "family_name": "Lovelace"}

EMPLOYMENT = EmploymentCredential(
    **NAMES,
    assignment_number="E1001-1",
    organisation_code="RXL",
    organisation_name="Blackpool Teaching Hospitals",
    position_title="Staff Nurse",
    position_number="P1",
    staff_group="03",
    job_role="03001",
    assignment_category="substantive",
    start_date=dt.date(2025, 1, 6),
)
IDENTITY = IdentityCredential(
    **NAMES,
    birthdate=dt.date(1990, 12, 10),
    assurance_level="medium",
    verification_method="in_person",
    verified_on=dt.date(2025, 1, 6),
)
REGISTRATION = ProfessionalRegistrationCredential(
    **NAMES,
    regulator="NMC",
    registration_number="12A3456B",
    register_name="Nurses' part of the register",
    checked_on=dt.date(2030, 1, 2),
)


@dataclass
class World:
    """One issuer (trusted for employment and identity), one holder, one verifier session."""

    key: IssuerKey = field(default_factory=lambda: IssuerKey.generate(NOW))
    holder: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", private=True))
    statuses: StatusList = field(default_factory=lambda: StatusList(1024, 2))
    registry: TrustRegistry = field(
        default_factory=lambda: TrustRegistry(
            [
                TrustedIssuer(ISSUER, "RXL", EmploymentCredential.vct),
                TrustedIssuer(ISSUER, "RXL", IdentityCredential.vct),
            ]
        )
    )
    nonce: str = "n-0S6_WzA2Mj"
    used: set[str] = field(default_factory=set)
    next_idx: int = 0

    def credential(
        self,
        claims: Any = EMPLOYMENT,
        *,
        key: IssuerKey | None = None,
        iat: dt.datetime | None = None,
        issuer: str = ISSUER,
    ) -> tuple[str, int]:
        idx = self.next_idx
        self.next_idx += 1
        return (
            build_credential(
                claims,
                issuer=issuer,
                key=key or self.key,
                holder_jwk=public_jwk(self.holder),
                status=StatusReference(STATUS_URI, idx),
                iat=iat or NOW - dt.timedelta(days=1),
            ),
            idx,
        )

    def present(
        self,
        credential: str,
        query_id: str = "employment",
        *,
        nonce: str | None = None,
        aud: str = CLIENT_ID,
        holder: ECKey | None = None,
        kb: bool = True,
    ) -> str:
        paths = [(name,) for name in QUERIES[query_id].claims]
        return present(
            credential,
            holder_key=(holder or self.holder) if kb else None,
            audience=aud,
            nonce=nonce or self.nonce,
            iat=NOW,
            paths=paths,
        )

    def status_token(self) -> str:
        return sign_status_list(
            self.statuses,
            uri=STATUS_URI,
            key=self.key.private_key,
            kid=self.key.kid,
            iat=NOW - dt.timedelta(minutes=5),
        )

    def status_lookup(self) -> Callable[[str, str], StatusListToken]:
        def lookup(uri: str, issuer: str) -> StatusListToken:
            if uri != STATUS_URI:
                raise VerificationError("status_unavailable", "unknown list")
            return verify_status_list(
                self.status_token(), key=self.key.public_key, expected_uri=uri, now=NOW
            )

        return lookup

    def nonce_check(self, nonce: str) -> bool:
        return nonce == self.nonce and nonce not in self.used

    def verify(
        self, vp_token: dict[str, str], query_ids: Sequence[str] = ("employment",)
    ) -> VerifiedPresentations:
        result = verify_presentations(
            PresentationResponse("state-1", vp_token),
            query_ids,
            issuer_keys=jwks_resolver({ISSUER: {"keys": [self.key.public_jwk()]}}),
            registry=self.registry,
            status_lookup=self.status_lookup(),
            nonce_check=self.nonce_check,
            audience=CLIENT_ID,
            now=NOW,
        )
        self.used.add(self.nonce)  # the session is single use once accepted
        return result

    def revoke(self, idx: int, status: Status = Status.INVALID) -> None:
        self.statuses.set(idx, status)


def form(vp_token: dict[str, list[str]] | str, state: str = "state-1") -> bytes:
    token = vp_token if isinstance(vp_token, str) else json.dumps(vp_token)
    return urlencode({"vp_token": token, "state": state}).encode()
