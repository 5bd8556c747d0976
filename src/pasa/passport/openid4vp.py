"""OpenID4VP 1.0 verifier core for the Digital Staff Passport: DCQL, request, response. Pure.

The receiving organisation asks for only what pre-provisioning needs (:data:`QUERIES`) with a
DCQL query, in an unsigned authorization request passed by value (client identifier prefix
``redirect_uri:``, OpenID4VP 1.0 section 5.9.3; ``response_mode=direct_post``). The wallet
posts ``vp_token`` (a JSON object: query id → list of SD-JWT presentations) and ``state`` to
the ``response_uri``. :func:`parse_response` checks the shape; :func:`verify_presentations`
runs every presentation through :func:`pasa.passport.vc.verify_credential` (key binding always
required: ``aud`` = our client id, ``nonce`` = the session's, ``sd_hash``), the trust registry,
the status list and the query's claims, and returns the verified claims per query or raises
:class:`~pasa.passport.errors.VerificationError` with one specific code. Lookups (issuer keys,
status list tokens) are injected, so this module does no I/O.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from pasa.passport.errors import VerificationError
from pasa.passport.sdjwt import IssuerKeyResolver
from pasa.passport.status_list import StatusListToken, check_status
from pasa.passport.trust import TrustRegistry, trusted_resolver
from pasa.passport.vc import (
    EmploymentCredential,
    IdentityCredential,
    ProfessionalRegistrationCredential,
    VerifiedCredential,
    verify_credential,
)

RESPONSE_PATH = "/passport/verifier/response"
CLIENT_ID_PREFIX = "redirect_uri:"
SCHEME = "openid4vp://"
FORMAT = "dc+sd-jwt"
MAX_RESPONSE_BYTES = 256 * 1024  # a few credentials; an SD-JWT itself is capped at 1 MB
MAX_PRESENTATIONS = 8


@dataclass(frozen=True, slots=True)
class CredentialQuery:
    """One DCQL Credential Query: an id, a ``vct`` and the claims pre-provisioning uses."""

    id: str
    vct: str
    claims: tuple[str, ...]

    def dcql(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": FORMAT,
            "meta": {"vct_values": [self.vct]},
            "claims": [{"path": [name]} for name in self.claims],
        }


# Data minimisation: names to match the expected starter; the post, organisation and dates to
# pre-provision; the previous ESR assignment number and the registration number to
# cross-reference. Nothing else (no NHS number, no address, no conditions).
QUERIES: dict[str, CredentialQuery] = {
    "employment": CredentialQuery(
        "employment",
        EmploymentCredential.vct,
        (
            "given_name",
            "family_name",
            "organisation_code",
            "organisation_name",
            "assignment_number",
            "position_title",
            "staff_group",
            "job_role",
            "assignment_category",
            "start_date",
        ),
    ),
    "identity": CredentialQuery(
        "identity",
        IdentityCredential.vct,
        ("given_name", "family_name", "birthdate", "assurance_level", "verified_on"),
    ),
    "professional_registration": CredentialQuery(
        "professional_registration",
        ProfessionalRegistrationCredential.vct,
        (
            "given_name",
            "family_name",
            "regulator",
            "registration_number",
            "registration_status",
            "checked_on",
        ),
    ),
}
DEFAULT_QUERY_IDS = ("employment", "identity")


def queries_for(ids: Collection[str]) -> list[CredentialQuery]:
    """The credential queries named ``ids`` (in a stable order); ValueError on an unknown id."""
    unknown = sorted(set(ids) - set(QUERIES))
    if unknown or not ids:
        raise ValueError(
            f"unknown credential queries {unknown} (known: {', '.join(QUERIES)})"
            if unknown
            else "ask for at least one credential"
        )
    return [q for key, q in QUERIES.items() if key in ids]


def dcql_query(ids: Collection[str] = DEFAULT_QUERY_IDS) -> dict[str, Any]:
    """The DCQL query for the credentials ``ids`` (all of them required)."""
    return {"credentials": [q.dcql() for q in queries_for(ids)]}


def client_id(response_uri: str) -> str:
    """Our Client Identifier: ``redirect_uri:`` + the response URI (also the KB-JWT ``aud``)."""
    return CLIENT_ID_PREFIX + response_uri


def response_uri_of(public_url: str) -> str:
    return public_url.rstrip("/") + RESPONSE_PATH


def client_metadata(client_name: str) -> dict[str, Any]:
    return {
        "vp_formats_supported": {
            FORMAT: {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}
        },
        "client_name": client_name,
    }


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def request_parameters(
    *,
    response_uri: str,
    nonce: str,
    state: str,
    query_ids: Collection[str] = DEFAULT_QUERY_IDS,
    client_name: str,
) -> dict[str, str]:
    """The authorization request parameters (unsigned, by value)."""
    return {
        "client_id": client_id(response_uri),
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": response_uri,
        "nonce": nonce,
        "state": state,
        "dcql_query": _compact(dcql_query(query_ids)),
        "client_metadata": _compact(client_metadata(client_name)),
    }


def request_uri(base: str = SCHEME, **kwargs: Any) -> str:
    """``openid4vp://?client_id=...`` (or ``base`` an HTTPS link for a QR code)."""
    return base + "?" + urlencode(request_parameters(**kwargs), quote_via=quote)


# --------------------------------------------------------------------------- the response


class ResponseError(VerificationError):
    """A direct_post response refused before any credential is looked at."""

    def __init__(self, code: str, message: str, error: str = "invalid_request") -> None:
        super().__init__(code, message)
        self.error = error


@dataclass(frozen=True, slots=True)
class PresentationResponse:
    """A parsed direct_post body: the state and, per query id, exactly one presentation."""

    state: str
    vp_token: dict[str, str]


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise ResponseError("parameter_repeated", f"The parameter {name} is given more than once.")
    return values[0]


def parse_response(body: bytes | str) -> PresentationResponse:
    """Parse an ``application/x-www-form-urlencoded`` direct_post body, or raise ResponseError.

    A wallet that declined sends ``error`` (``access_denied``) and ``state`` instead; that is
    raised as ``wallet_error`` carrying the wallet's own code.
    """
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if len(raw) > MAX_RESPONSE_BYTES:
        raise ResponseError("response_too_large", "The response is larger than we accept.")
    try:
        text = raw.decode("utf-8", "strict")
        form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ResponseError(
            "response_malformed", "The response is not a form-encoded body."
        ) from exc
    state = _one(form, "state")
    if not state:
        raise ResponseError("state_missing", "The response has no state.")
    if len(state) > 100:
        raise ResponseError("state_unknown", "The response's state is not one we issued.")
    wallet_error = _one(form, "error")
    if wallet_error is not None:
        code = wallet_error if wallet_error.isascii() and len(wallet_error) <= 60 else "invalid"
        raise ResponseError("wallet_error", f"The wallet declined: {code}.", error=code)
    token_text = _one(form, "vp_token")
    if token_text is None:
        raise ResponseError("vp_token_missing", "The response has no vp_token.")
    try:
        token = json.loads(token_text)
    except (ValueError, RecursionError) as exc:
        raise ResponseError("vp_token_malformed", "The vp_token is not JSON.") from exc
    if not isinstance(token, dict) or not token:
        raise ResponseError("vp_token_malformed", "The vp_token is not a JSON object of query ids.")
    if len(token) > MAX_PRESENTATIONS:
        raise ResponseError("vp_token_malformed", "The vp_token holds too many presentations.")
    out: dict[str, str] = {}
    for query_id, presentations in token.items():
        if (
            not isinstance(presentations, list)
            or len(presentations) != 1
            or not isinstance(presentations[0], str)
            or not presentations[0]
        ):
            raise ResponseError(
                "vp_token_malformed",
                "Each vp_token entry must be a list holding exactly one presentation.",
            )
        out[query_id] = presentations[0]
    return PresentationResponse(state, out)


# --------------------------------------------------------------------------- verification

StatusLookup = Callable[[str, str], StatusListToken]
"""(status list URI, issuer) -> the verified Status List Token (fetched or cached); raises
VerificationError when it cannot be had."""


@dataclass(frozen=True, slots=True)
class VerifiedPresentations:
    """What was verified, per credential query."""

    credentials: dict[str, VerifiedCredential]

    def claims(self, query_id: str) -> dict[str, Any]:
        cred = self.credentials.get(query_id)
        return cred.claims if cred is not None else {}

    def relied_on(self) -> dict[str, dict[str, Any]]:
        """Per query: issuer, type, claim *names* used, status reference (no claim values)."""
        out: dict[str, dict[str, Any]] = {}
        for query_id, cred in self.credentials.items():
            out[query_id] = {
                "issuer": cred.issuer,
                "vct": cred.vct,
                "claims": list(QUERIES[query_id].claims),
                "status": None
                if cred.status is None
                else {"uri": cred.status.uri, "idx": cred.status.idx},
                "expires": cred.expires,
            }
        return out


def match_query(query: CredentialQuery, credential: VerifiedCredential) -> None:
    """Raise unless the presentation is of the query's type and discloses every claim asked."""
    if credential.vct != query.vct:
        raise VerificationError(
            "vct_unexpected", f"The {query.id} presentation is a credential of another type."
        )
    missing = [name for name in query.claims if name not in credential.claims]
    if missing:
        raise VerificationError(
            "claims_missing",
            f"The {query.id} presentation does not disclose {', '.join(missing)}.",
        )


def verify_presentations(
    response: PresentationResponse,
    query_ids: Sequence[str],
    *,
    issuer_keys: IssuerKeyResolver,
    registry: TrustRegistry,
    status_lookup: StatusLookup,
    nonce_check: Callable[[str], bool],
    audience: str,
    now: dt.datetime | int,
) -> VerifiedPresentations:
    """Verify every presentation against its query; the first failure raises its reason.

    ``nonce_check`` must accept only this session's nonce while the session is unused; the
    caller makes the session single-use when it records the outcome.
    """
    queries = queries_for(query_ids)
    asked = {q.id for q in queries}
    extra = sorted(set(response.vp_token) - asked)
    if extra:
        raise VerificationError("query_unknown", "The vp_token answers a query we did not ask.")
    missing = [q.id for q in queries if q.id not in response.vp_token]
    if missing:
        raise VerificationError(
            "credential_missing", f"No {', '.join(missing)} credential was presented."
        )
    resolver = trusted_resolver(registry, issuer_keys)
    verified: dict[str, VerifiedCredential] = {}
    for query in queries:
        presentation = response.vp_token[query.id]
        credential = verify_credential(
            presentation,
            issuer_keys=resolver,
            now=now,
            audience=audience,
            nonce_check=nonce_check,
            expected_vct=[query.vct],
        )
        if credential.status is None:
            # Every passport credential carries a status reference; without one a revoked
            # credential could never be told apart.
            raise VerificationError(
                "status_reference_missing", "The credential has no status reference."
            )
        token = status_lookup(credential.status.uri, credential.issuer)
        check_status(
            token, {"status_list": {"uri": credential.status.uri, "idx": credential.status.idx}}
        )
        match_query(query, credential)
        verified[query.id] = credential
    return VerifiedPresentations(verified)
