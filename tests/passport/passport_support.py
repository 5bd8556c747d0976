"""Shared passport test support: keys made once per session, a fixed instant, a nonce store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from joserfc.jwk import ECKey

from pasa.passport._jose import public_jwk
from pasa.passport.sdjwt import SD, IssuerKeyResolver, SdJwt, issue, keys_by_kid

NOW = 1_900_000_000  # 2030-03-17, seconds since the epoch
AUD = "x509_san_dns:verifier.trust-b.nhs.uk"
KID = "issuer-1"


@dataclass
class NonceStore:
    """Single-use nonces, as a verifier would keep them."""

    live: set[str] = field(default_factory=set)

    def new(self, value: str) -> str:
        self.live.add(value)
        return value

    def consume(self, value: str) -> bool:
        if value in self.live:
            self.live.remove(value)
            return True
        return False


@dataclass(frozen=True)
class Keys:
    issuer: ECKey
    holder: ECKey
    other: ECKey
    resolver: IssuerKeyResolver

    @property
    def holder_jwk(self) -> dict[str, Any]:
        return public_jwk(self.holder)


@pytest.fixture(scope="session")
def keys() -> Keys:
    issuer = ECKey.generate_key("P-256", private=True)
    return Keys(
        issuer,
        ECKey.generate_key("P-256", private=True),
        ECKey.generate_key("P-256", private=True),
        keys_by_kid({KID: issuer}),
    )


def sample_claims() -> dict[str, Any]:
    return {
        "iss": "https://trust-a.nhs.uk/passport",
        "iat": NOW - 3600,
        "exp": NOW + 86400,
        "vct": "urn:example:test:1",
        "given_name": SD("Ada"),
        "family_name": SD("Lovelace"),
        "address": SD({"street": SD("1 Hospital Road"), "locality": SD("Leeds"), "country": "GB"}),
        "languages": [SD("en"), "cy", SD("fr")],
        "grade": "ST3",
    }


@pytest.fixture(scope="session")
def credential(keys: Keys) -> SdJwt:
    return issue(
        sample_claims(), issuer_key=keys.issuer, holder_jwk=keys.holder_jwk, kid=KID, max_decoys=3
    )


@pytest.fixture
def nonces() -> NonceStore:
    return NonceStore()
