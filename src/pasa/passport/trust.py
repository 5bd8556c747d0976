"""The issuer trust registry of a verifier: who may attest what. Pure.

A valid signature only proves *who* signed; the registry says whether that signer may attest
that kind of fact (research note, pitfall 20). Each entry names an issuer identifier (the
``iss`` of its credentials, an HTTPS URL whose ``/.well-known/jwt-vc-issuer`` publishes its
keys), the ODS code of the organisation behind it, and one ``vct`` it may issue. An issuer
absent from the registry (``issuer_not_trusted``) and an issuer trusted for other types only
(``issuer_not_trusted_for_type``) are distinct rejections.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

from pasa.passport.errors import VerificationError
from pasa.passport.sdjwt import IssuerKeyResolver
from pasa.passport.vc import CREDENTIAL_TYPES, VCT_PREFIX

_ODS = re.compile(r"^[A-Z0-9]{3,6}$")


def vct_of(name: str) -> str:
    """The ``vct`` for a short type name (``employment`` → ``urn:nhs:pasa:passport:employment:1``)
    or a full ``vct``; a :class:`ValueError` naming the known types otherwise."""
    candidate = name if name.startswith(VCT_PREFIX) else f"{VCT_PREFIX}{name}:1"
    if candidate not in CREDENTIAL_TYPES:
        known = ", ".join(sorted(v.removeprefix(VCT_PREFIX)[:-2] for v in CREDENTIAL_TYPES))
        raise ValueError(f"unknown credential type {name!r} (types: {known})")
    return candidate


def check_issuer_identifier(issuer: str, *, allow_loopback_http: bool = False) -> str:
    """An issuer identifier as the registry keeps it: an HTTPS URL without query or fragment
    (plain http only for a loopback host, and only when explicitly allowed: tests)."""
    parts = urlsplit(issuer)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme != "https" and not (
        parts.scheme == "http" and loopback and allow_loopback_http
    ):
        raise ValueError(f"issuer {issuer!r} is not an https:// URL")
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ValueError(f"issuer {issuer!r} must be a plain URL (host, optional path)")
    return issuer.rstrip("/") if parts.path not in ("", "/") else f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One registry row: ``issuer`` (at ``organisation_code``) may issue ``vct``."""

    issuer: str
    organisation_code: str
    vct: str

    def __post_init__(self) -> None:
        if not _ODS.fullmatch(self.organisation_code):
            raise ValueError(f"{self.organisation_code!r} is not an ODS code")
        if self.vct not in CREDENTIAL_TYPES:
            raise ValueError(f"{self.vct!r} is not a passport credential type")


class TrustRegistry:
    """Lookup over :class:`TrustedIssuer` entries."""

    def __init__(self, entries: Iterable[TrustedIssuer]) -> None:
        self._types: dict[str, set[str]] = {}
        self._orgs: dict[str, str] = {}
        for entry in entries:
            self._types.setdefault(entry.issuer, set()).add(entry.vct)
            self._orgs[entry.issuer] = entry.organisation_code

    def __contains__(self, issuer: object) -> bool:
        return issuer in self._types

    def issuers(self) -> list[str]:
        return sorted(self._types)

    def organisation_of(self, issuer: str) -> str | None:
        return self._orgs.get(issuer)

    def check(self, issuer: Any, vct: Any) -> None:
        """Raise unless ``issuer`` is trusted to issue credentials of type ``vct``."""
        if not isinstance(issuer, str) or issuer not in self._types:
            raise VerificationError(
                "issuer_not_trusted", "The credential's issuer is not in our trust registry."
            )
        if not isinstance(vct, str) or vct not in self._types[issuer]:
            raise VerificationError(
                "issuer_not_trusted_for_type",
                "The credential's issuer is trusted, but not to issue this type of credential.",
            )


def trusted_resolver(registry: TrustRegistry, keys: IssuerKeyResolver) -> IssuerKeyResolver:
    """A resolver that asks the registry before any key is looked up.

    Runs on the *unverified* payload, so it only decides whether to look further; the key it
    then returns still has to verify the signature over that same ``iss`` and ``vct``.
    """

    def resolve(header: Mapping[str, Any], payload: Mapping[str, Any]) -> ECKey | None:
        registry.check(payload.get("iss"), payload.get("vct"))
        return keys(header, payload)

    return resolve
