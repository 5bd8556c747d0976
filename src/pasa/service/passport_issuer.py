"""Digital Staff Passport issuer: OpenID4VCI 1.0, pre-authorized code flow (issue 7).

The employing organisation issues SD-JWT VCs (:mod:`pasa.passport.vc`) built from the hub's
own record. The flow, with what is stored (hashes only, SHA-256 like API tokens):

1. :func:`create_offer` — a Credential Offer for a person: a random pre-authorized code
   (256 bits) and a 6-digit transaction code returned to the caller to send on a second
   channel. Single use, :data:`OFFER_LIFETIME` (10 minutes), locked after
   :data:`MAX_TX_CODE_FAILURES` wrong transaction codes. The offer is served by reference at
   ``/passport/offers/{uid}`` (the code inside it is kept encrypted with the KEK).
2. :func:`exchange_token` — ``grant_type=urn:ietf:params:oauth:grant-type:pre-authorized_code``
   plus ``tx_code`` → a Bearer access token (:data:`TOKEN_LIFETIME`).
3. :func:`issue_nonce` — a single-use ``c_nonce`` (:data:`NONCE_LIFETIME`).
4. :func:`issue_credentials` — checks the ``openid4vci-proof+jwt`` key proof
   (:func:`check_proof`: typ, ES256 only, ``jwk`` header, signature, ``aud`` = the issuer
   identifier, ``iat`` freshness, then the nonce consumed once), allocates a random status
   index and signs the credential(s) with the current issuer key.
5. :func:`set_state` — revoke / suspend / reinstate; the status list is re-signed at once.
   :func:`passport_lifecycle` (a scheduler pre-step) revokes a leaver's employment credentials
   on the leaving date and suspends them while the assignment is suspended.

Every state-changing step is audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit.log import append
from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.errors import NotFoundError, PasaError
from pasa.domain.model import AssignmentStatus
from pasa.passport._jose import (
    b64url_decode,
    json_loads,
    parse_jws,
    public_key_from_jwk,
    signature_valid,
)
from pasa.passport.errors import VerificationError
from pasa.passport.keys import IssuerKey, KeyEncryptionKey
from pasa.passport.sdjwt import VC_TYP
from pasa.passport.status_list import IndexAllocator, Status, StatusList, sign_status_list
from pasa.passport.vc import (
    ClaimSet,
    EmploymentCredential,
    IdentityCredential,
    StatusReference,
    build_credential,
)
from pasa.service import checks
from pasa.store import schema as s

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
OFFER_LIFETIME = dt.timedelta(minutes=10)
TOKEN_LIFETIME = dt.timedelta(minutes=10)
NONCE_LIFETIME = dt.timedelta(minutes=5)
PROOF_MAX_AGE = dt.timedelta(minutes=5)
LEEWAY = dt.timedelta(seconds=60)
MAX_TX_CODE_FAILURES = 5
TX_CODE_DIGITS = 6
KEY_GRACE = dt.timedelta(days=1)
STATUS_LIST_SIZE = 65_536  # 2 bits each: 16 KiB, herd privacy for a whole trust
STATUS_LIST_BITS = 2
STATUS_LIST_LIFETIME = dt.timedelta(hours=24)
STATUS_LIST_TTL = dt.timedelta(hours=1)
# Re-sign a list served this long after it was signed, so its exp is never near.
STATUS_LIST_REFRESH = dt.timedelta(hours=12)

VALID, REVOKED, SUSPENDED = "valid", "revoked", "suspended"
SUPERSEDED = "superseded"  # the reason: the HR record it attests changed; collect the new one
_STATUS_VALUE = {VALID: Status.VALID, REVOKED: Status.INVALID, SUSPENDED: Status.SUSPENDED}

# credential_configuration_id -> claim set type
CONFIGURATIONS: dict[str, type[ClaimSet]] = {
    "employment": EmploymentCredential,
    "identity": IdentityCredential,
    **checks.KINDS,  # one configuration per pre-employment check kind (pasa.service.checks)
}
_DISPLAY = {
    "employment": "NHS employment",
    "identity": "Identity (NHS employer check)",
    checks.RIGHT_TO_WORK: "Right to work in the UK",
    checks.DBS: "DBS check",
    checks.OCCUPATIONAL_HEALTH: "Occupational health clearance",
    checks.CORE_SKILLS_TRAINING: "Core Skills Training (CSTF)",
    checks.PROFESSIONAL_REGISTRATION: "Professional registration",
    checks.TRAINING_PLACEMENT: "Training placement",
}
# Check credentials are about the person, not one assignment: revoked when they leave.
CHECK_VCTS = frozenset(cls.vct for cls in checks.KINDS.values())

_CATEGORY = {
    "permanent": "substantive",
    "substantive": "substantive",
    "fixed term temp": "fixed_term",
    "fixed term": "fixed_term",
    "fixed_term": "fixed_term",
    "bank": "bank",
    "honorary": "honorary",
    "locum": "locum",
}


class IssuanceError(PasaError):
    """An OAuth / OpenID4VCI error: ``error`` (the protocol code), ``reason`` (ours), message."""

    def __init__(self, error: str, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.reason = reason
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.message, "reason": self.reason}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _tx_hash(code: str, tx_code: str) -> str:
    # Keyed by the 256-bit pre-authorized code: a 6-digit code cannot be brute-forced from
    # the table alone.
    return hmac.new(code.encode(), tx_code.encode(), hashlib.sha256).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def issuer_identifier(public_url: str | None = None) -> str:
    """The Credential Issuer Identifier: PASA's public URL (``PASA_PUBLIC_URL``)."""
    url = public_url if public_url is not None else get_settings().public_url
    return (url or "http://localhost:8000").rstrip("/")


def status_list_uri(issuer: str, list_uid: str) -> str:
    return f"{issuer}/passport/status/{list_uid}"


def offer_uri(issuer: str, offer_uid: str) -> str:
    return f"{issuer}/passport/offers/{offer_uid}"


def offer_link(issuer: str, offer_uid: str) -> str:
    """``openid-credential-offer://?credential_offer_uri=...`` (for a QR code)."""
    return "openid-credential-offer://?credential_offer_uri=" + quote(
        offer_uri(issuer, offer_uid), safe=""
    )


# --- metadata -----------------------------------------------------------------------------


def issuer_metadata(issuer: str) -> dict[str, Any]:
    """``/.well-known/openid-credential-issuer``."""
    configurations = {
        cid: {
            "format": VC_TYP,
            "vct": cls.vct,
            "scope": f"passport_{cid}",
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256"],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
            "credential_metadata": {"display": [{"name": _DISPLAY[cid], "locale": "en-GB"}]},
        }
        for cid, cls in CONFIGURATIONS.items()
    }
    return {
        "credential_issuer": issuer,
        "credential_endpoint": f"{issuer}/passport/credential",
        "nonce_endpoint": f"{issuer}/passport/nonce",
        "credential_configurations_supported": configurations,
        "display": [{"name": "PASA Digital Staff Passport", "locale": "en-GB"}],
    }


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """``/.well-known/oauth-authorization-server`` (the issuer is its own AS)."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/passport/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "pre-authorized_grant_anonymous_access_supported": True,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
    }


def published_jwks(conn: Connection, now: dt.datetime) -> dict[str, Any]:
    """The current key and every retired key still needed (``publish_until`` not passed)."""
    k = s.passport_issuer_key
    rows = conn.execute(
        sa.select(k.c.public_jwk, k.c.retired_at, k.c.publish_until).order_by(k.c.id.desc())
    ).all()
    keys = [
        dict(row.public_jwk)
        for row in rows
        if row.retired_at is None
        or (row.publish_until is not None and _aware(row.publish_until) > now)
    ]
    return {"keys": keys}


def jwt_vc_issuer_metadata(conn: Connection, issuer: str, now: dt.datetime) -> dict[str, Any]:
    """``/.well-known/jwt-vc-issuer``: ``{issuer, jwks}``."""
    return {"issuer": issuer, "jwks": published_jwks(conn, now)}


# --- keys ---------------------------------------------------------------------------------


def _key_record(row: Any) -> dict[str, Any]:
    return {
        "kid": row.kid,
        "private_key_encrypted": row.private_key_encrypted,
        "created_at": _aware(row.created_at).isoformat(),
        "retired_at": _aware(row.retired_at).isoformat() if row.retired_at else None,
        "signed_until": _aware(row.signed_until).isoformat() if row.signed_until else None,
    }


def _insert_key(conn: Connection, kek: KeyEncryptionKey, now: dt.datetime) -> IssuerKey:
    key = IssuerKey.generate(now)
    record = key.to_record(kek)
    conn.execute(
        s.passport_issuer_key.insert().values(
            kid=key.kid,
            public_jwk=record["public_jwk"],
            private_key_encrypted=record["private_key_encrypted"],
            created_at=now,
        )
    )
    return key


def current_key(conn: Connection, kek: KeyEncryptionKey, now: dt.datetime) -> IssuerKey:
    """The current signing key, decrypted; the first one is generated on first use."""
    k = s.passport_issuer_key
    row = conn.execute(
        sa.select(k).where(k.c.retired_at.is_(None)).order_by(k.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return _insert_key(conn, kek, now)
    return IssuerKey.from_record(_key_record(row), kek)


def rotate_key(engine: Engine, *, actor: str, now: dt.datetime, kek: KeyEncryptionKey) -> str:
    """Retire the current key (published until its credentials expire); return the new kid."""
    k = s.passport_issuer_key
    with engine.begin() as conn:
        for row in conn.execute(sa.select(k).where(k.c.retired_at.is_(None))).all():
            until = _aware(row.signed_until) + KEY_GRACE if row.signed_until else None
            conn.execute(
                k.update().where(k.c.id == row.id).values(retired_at=now, publish_until=until)
            )
        key = _insert_key(conn, kek, now)
        append(
            conn,
            actor=actor,
            action="passport.key_rotated",
            subject_type="passport_key",
            subject_id=key.kid,
            at=now,
        )
    return key.kid


def _note_signed(conn: Connection, kid: str, expires: dt.datetime) -> None:
    k = s.passport_issuer_key
    row = conn.execute(sa.select(k.c.signed_until).where(k.c.kid == kid)).first()
    if row is not None and (row.signed_until is None or _aware(row.signed_until) < expires):
        conn.execute(k.update().where(k.c.kid == kid).values(signed_until=expires))


# --- offers and tokens --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewOffer:
    """A created offer. ``tx_code`` goes on a second channel; shown only here."""

    uid: str
    person_id: int
    configuration_ids: list[str]
    pre_authorized_code: str
    tx_code: str
    expires_at: dt.datetime
    uri: str  # openid-credential-offer://?credential_offer_uri=...


def find_person(conn: Connection, employee_number: str) -> int:
    a = s.assignment
    person_id = conn.scalar(
        sa.select(a.c.person_id).where(a.c.employee_number == employee_number).limit(1)
    )
    if person_id is None:
        raise NotFoundError(f"No person has employee number {employee_number}.")
    return int(person_id)


def create_offer(
    engine: Engine,
    person_id: int,
    *,
    issuer: str,
    actor: str,
    now: dt.datetime,
    kek: KeyEncryptionKey,
    configuration_ids: Iterable[str] | None = None,
) -> NewOffer:
    """A single-use Credential Offer for ``person_id``: employment, identity if known, and
    each kind of check with something to attest today."""
    with engine.begin() as conn:
        person = conn.execute(sa.select(s.person).where(s.person.c.id == person_id)).first()
        if person is None:
            raise NotFoundError(f"No person #{person_id}.")
        if configuration_ids is None:
            ids = ["employment"] + (["identity"] if person.date_of_birth else [])
            ids += list(checks.credential_claims(conn, person, _london_today(now)))
        else:
            ids = list(dict.fromkeys(configuration_ids))
            unknown = [i for i in ids if i not in CONFIGURATIONS]
            if unknown or not ids:
                raise PasaError(f"Unknown credential configuration(s): {', '.join(unknown)}.")
        uid = secrets.token_urlsafe(24)
        code = secrets.token_urlsafe(32)
        tx_code = f"{secrets.randbelow(10**TX_CODE_DIGITS):0{TX_CODE_DIGITS}d}"
        expires = now + OFFER_LIFETIME
        offer_id = conn.execute(
            s.passport_offer.insert()
            .values(
                uid=uid,
                code_hash=_hash(code),
                code_encrypted=kek.encrypt(code.encode(), context=f"offer:{uid}"),
                tx_code_hash=_tx_hash(code, tx_code),
                person_id=person_id,
                configuration_ids=ids,
                created_by=actor,
                created_at=now,
                expires_at=expires,
            )
            .returning(s.passport_offer.c.id)
        ).scalar_one()
        append(
            conn,
            actor=actor,
            action="passport.offer_created",
            subject_type="person",
            subject_id=person_id,
            details={
                "offer_id": offer_id,
                "configurations": ids,
                "expires_at": expires.isoformat(),
            },
            at=now,
        )
    return NewOffer(uid, person_id, ids, code, tx_code, expires, offer_link(issuer, uid))


def offer_document(
    engine: Engine, uid: str, *, issuer: str, now: dt.datetime, kek: KeyEncryptionKey
) -> dict[str, Any]:
    """The Credential Offer JSON served by reference; NotFoundError once used or expired."""
    o = s.passport_offer
    with engine.connect() as conn:
        row = conn.execute(sa.select(o).where(o.c.uid == uid)).first()
    if (
        row is None
        or row.used_at is not None
        or _aware(row.expires_at) <= now
        or row.failed_attempts >= MAX_TX_CODE_FAILURES
    ):
        raise NotFoundError("There is no such credential offer, or it has expired.")
    code = kek.decrypt(row.code_encrypted, context=f"offer:{uid}").decode()
    return {
        "credential_issuer": issuer,
        "credential_configuration_ids": list(row.configuration_ids),
        "grants": {
            PRE_AUTHORIZED_GRANT: {
                "pre-authorized_code": code,
                "tx_code": {
                    "input_mode": "numeric",
                    "length": TX_CODE_DIGITS,
                    "description": "Enter the code PASA sent you by text message or e-mail.",
                },
            }
        },
    }


@dataclass(frozen=True, slots=True)
class AccessToken:
    access_token: str
    expires_in: int

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def exchange_token(
    engine: Engine,
    *,
    grant_type: str | None,
    code: str | None,
    tx_code: str | None,
    now: dt.datetime,
) -> AccessToken:
    """The token endpoint: a pre-authorized code and its transaction code → access token.

    Each attempt first reserves one of the :data:`MAX_TX_CODE_FAILURES` attempts atomically
    (a conditional increment, committed before the code is compared), so even parallel
    guesses get five tries in all; a right code gives its attempt back and marks the offer
    used, again conditionally, so it is redeemed once.
    """
    if grant_type != PRE_AUTHORIZED_GRANT:
        raise IssuanceError(
            "unsupported_grant_type", "grant_type", "Only the pre-authorized code grant is offered."
        )
    if not code:
        raise IssuanceError("invalid_request", "code_missing", "pre-authorized_code is missing.")
    if not tx_code:
        raise IssuanceError("invalid_request", "tx_code_missing", "tx_code is missing.")
    o = s.passport_offer
    with engine.begin() as conn:
        row = conn.execute(sa.select(o).where(o.c.code_hash == _hash(code))).first()
        refusal: IssuanceError | None = None
        if row is None or not hmac.compare_digest(row.code_hash, _hash(code)):
            refusal = IssuanceError(
                "invalid_grant", "code_unknown", "The pre-authorized code is unknown."
            )
        elif row.used_at is not None:
            refusal = IssuanceError(
                "invalid_grant", "code_used", "The offer has already been used."
            )
        elif _aware(row.expires_at) <= now:
            refusal = IssuanceError("invalid_grant", "code_expired", "The offer has expired.")
        else:
            reserved = conn.execute(
                o.update()
                .where(o.c.id == row.id, o.c.failed_attempts < MAX_TX_CODE_FAILURES)
                .values(failed_attempts=o.c.failed_attempts + 1)
            ).rowcount
            if reserved != 1:
                refusal = IssuanceError(
                    "invalid_grant",
                    "offer_locked",
                    "Too many wrong transaction codes: this offer is locked; ask for a new one.",
                )
    if refusal is not None:
        raise refusal
    assert row is not None
    if not hmac.compare_digest(row.tx_code_hash, _tx_hash(code, tx_code)):
        with engine.begin() as conn:
            failures = conn.scalar(sa.select(o.c.failed_attempts).where(o.c.id == row.id)) or 0
            append(
                conn,
                actor="passport:token",
                action="passport.tx_code_failed",
                subject_type="person",
                subject_id=row.person_id,
                details={"offer_id": row.id, "failures": failures},
                at=now,
            )
        left = MAX_TX_CODE_FAILURES - failures
        if left > 0:
            raise IssuanceError(
                "invalid_grant",
                "tx_code_wrong",
                f"The transaction code is wrong ({left} attempt{'s' if left != 1 else ''} left).",
            )
        raise IssuanceError(
            "invalid_grant",
            "offer_locked",
            "The transaction code is wrong; the offer is now locked.",
        )
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        claimed = conn.execute(
            o.update()
            .where(o.c.id == row.id, o.c.used_at.is_(None))
            .values(used_at=now, failed_attempts=o.c.failed_attempts - 1)
        ).rowcount
        if claimed != 1:  # a concurrent exchange redeemed it first
            raise IssuanceError("invalid_grant", "code_used", "The offer has already been used.")
        conn.execute(
            s.passport_access_token.insert().values(
                token_hash=_hash(token),
                offer_id=row.id,
                created_at=now,
                expires_at=now + TOKEN_LIFETIME,
            )
        )
        append(
            conn,
            actor="passport:token",
            action="passport.offer_redeemed",
            subject_type="person",
            subject_id=row.person_id,
            details={"offer_id": row.id},
            at=now,
        )
    return AccessToken(token, int(TOKEN_LIFETIME.total_seconds()))


def issue_nonce(engine: Engine, *, now: dt.datetime) -> str:
    """A fresh single-use ``c_nonce``."""
    nonce = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            s.passport_nonce.insert().values(
                nonce_hash=_hash(nonce), created_at=now, expires_at=now + NONCE_LIFETIME
            )
        )
    return nonce


def consume_nonce(conn: Connection, nonce: str, now: dt.datetime) -> bool:
    """True exactly once for a live nonce (an atomic conditional update)."""
    n = s.passport_nonce
    done = conn.execute(
        n.update()
        .where(n.c.nonce_hash == _hash(nonce), n.c.used_at.is_(None), n.c.expires_at > now)
        .values(used_at=now)
    ).rowcount
    return done == 1


# --- credential endpoint ------------------------------------------------------------------


def _proof_error(reason: str, message: str) -> IssuanceError:
    return IssuanceError("invalid_proof", reason, message)


def check_proof(proof: Any, *, issuer: str, now: dt.datetime) -> tuple[dict[str, Any], str]:
    """Check an ``openid4vci-proof+jwt`` up to (not including) its nonce.

    Returns the holder's public JWK and the proof's nonce. Order: structure, alg allow-list
    (``none`` and MACs refused before any key is used), ``typ``, ``jwk`` header (``kid`` and
    ``x5c`` unsupported), signature, ``aud``, ``iat``, ``nonce`` present.
    """
    if not isinstance(proof, str) or not proof.isascii() or len(proof) > 20_000:
        raise _proof_error("proof_malformed", "The key proof is not a compact JWS.")
    try:
        jws = parse_jws(proof, what="key proof", prefix="proof")
    except VerificationError as exc:
        raise _proof_error(exc.code, exc.message) from exc
    header, payload = jws.header, jws.payload
    if header.get("typ") != PROOF_TYP:
        raise _proof_error("proof_typ", f"The key proof's typ is not {PROOF_TYP}.")
    if "kid" in header or "x5c" in header or "jwk" not in header:
        raise _proof_error(
            "proof_key", "The key proof must carry the holder's key as a jwk header (only)."
        )
    try:
        holder = public_key_from_jwk(header["jwk"])
    except ValueError as exc:
        raise _proof_error("proof_key", "The key proof's jwk is not a P-256 public key.") from exc
    if not signature_valid(jws, holder):
        raise _proof_error("proof_signature", "The key proof is not signed by its jwk.")
    if payload.get("aud") != issuer:
        raise _proof_error("proof_aud", "The key proof's aud is not this credential issuer.")
    iat = payload.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise _proof_error("proof_iat", "The key proof has no numeric iat.")
    now_s = now.timestamp()
    if iat > now_s + LEEWAY.total_seconds():
        raise _proof_error("proof_iat", "The key proof's iat is in the future.")
    if iat < now_s - (PROOF_MAX_AGE + LEEWAY).total_seconds():
        raise _proof_error("proof_iat", "The key proof is too old (iat); make a new one.")
    nonce = payload.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise _proof_error("proof_nonce_missing", "The key proof has no nonce (c_nonce).")
    return {k: header["jwk"][k] for k in ("kty", "crv", "x", "y")}, nonce


def _token_offer(conn: Connection, token: str | None, now: dt.datetime) -> Any:
    t, o = s.passport_access_token, s.passport_offer
    if not token:
        raise IssuanceError(
            "invalid_token", "token_missing", "A Bearer access token is needed.", 401
        )
    row = conn.execute(
        sa.select(t.c.token_hash, t.c.expires_at, o.c.id, o.c.person_id, o.c.configuration_ids)
        .join(o, o.c.id == t.c.offer_id)
        .where(t.c.token_hash == _hash(token))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, _hash(token)):
        raise IssuanceError("invalid_token", "token_unknown", "The access token is not valid.", 401)
    if _aware(row.expires_at) <= now:
        raise IssuanceError("invalid_token", "token_expired", "The access token has expired.", 401)
    return row


def _london_today(now: dt.datetime) -> dt.date:
    return local_date(now, get_settings().timezone)


def claims_digest(claims: ClaimSet) -> str:
    """What a credential attests, as a digest: equal digests, same credential contents."""
    canonical = json.dumps(claims.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _employment_claims(conn: Connection, person: Any, today: dt.date) -> list[tuple[int, ClaimSet]]:
    return _employment_claims_of(conn, {int(person.id): person}, today).get(int(person.id), [])


def _employment_claims_of(
    conn: Connection, people: Mapping[int, Any], today: dt.date
) -> dict[int, list[tuple[int, ClaimSet]]]:
    """(assignment id, claims) of every current, unsuspended assignment, per person, in one
    query for all of ``people`` (person rows by id)."""
    a, p, org = s.assignment, s.position, s.organisation
    if not people:
        return {}
    rows = conn.execute(
        sa.select(
            a,
            p.c.title,
            p.c.staff_group,
            p.c.job_role_code,
            p.c.occupation_code,
            p.c.position_number.label("pos_number"),
            org.c.ods_code,
            org.c.name.label("org"),
        )
        .join(p, p.c.id == a.c.position_id)
        .join(org, org.c.id == a.c.organisation_id)
        .where(
            a.c.person_id.in_(sorted(people)),
            a.c.start_date <= today,
            sa.or_(a.c.end_date.is_(None), a.c.end_date >= today),
            a.c.status != AssignmentStatus.SUSPENDED.value,
        )
        .order_by(a.c.person_id, a.c.is_primary.desc(), a.c.start_date)
    ).all()
    out: dict[int, list[tuple[int, ClaimSet]]] = {}
    for row in rows:
        person = people[int(row.person_id)]
        claims = EmploymentCredential(
            given_name=person.known_as or person.first_name,
            family_name=person.last_name,
            assignment_number=row.assignment_number,
            organisation_code=row.ods_code,
            organisation_name=row.org,
            position_title=row.title,
            position_number=row.pos_number,
            staff_group=row.staff_group,
            job_role=row.job_role_code,
            occupation_code=row.occupation_code,
            assignment_category=_CATEGORY.get(row.category.strip().lower(), "substantive"),
            start_date=row.start_date,
            end_date=row.end_date,
        )
        out.setdefault(int(row.person_id), []).append((int(row.id), claims))
    return out


def _identity_claims(person: Any, today: dt.date) -> ClaimSet | None:
    if person.date_of_birth is None:
        return None
    # The employer's pre-employment identity check (NHS Employers standard), in person.
    return IdentityCredential(
        given_name=person.first_name,
        family_name=person.last_name,
        birthdate=person.date_of_birth,
        assurance_level="medium",
        verification_method="in_person",
        verified_on=_aware(person.created_at).date(),
    )


def _writable_list(conn: Connection, now: dt.datetime) -> tuple[Any, IndexAllocator]:
    sl, c = s.passport_status_list, s.passport_credential
    for row in conn.execute(sa.select(sl).order_by(sl.c.id.desc()).limit(1)).all():
        used = set(
            conn.scalars(sa.select(c.c.status_idx).where(c.c.status_list_id == row.id)).all()
        )
        allocator = IndexAllocator(row.size, used)
        if allocator.free > 0:
            return row, allocator
    data = StatusList(STATUS_LIST_SIZE, STATUS_LIST_BITS).to_bytes()
    list_id = conn.execute(
        sl.insert()
        .values(
            uid=str(uuid.uuid4()),
            bits=STATUS_LIST_BITS,
            size=STATUS_LIST_SIZE,
            data=data,
            version=1,
            created_at=now,
            updated_at=now,
        )
        .returning(sl.c.id)
    ).scalar_one()
    row = conn.execute(sa.select(sl).where(sl.c.id == list_id)).one()
    return row, IndexAllocator(row.size)


@dataclass(frozen=True, slots=True)
class Issued:
    uid: str
    vct: str
    credential: str


def issue_credentials(
    engine: Engine,
    *,
    access_token: str | None,
    request: Mapping[str, Any],
    issuer: str,
    now: dt.datetime,
    kek: KeyEncryptionKey,
) -> list[Issued]:
    """The credential endpoint: validate token and proof, sign and record the credential(s).

    ``employment`` gives one credential per current assignment; ``identity`` one; a check
    kind one per current, unexpired check of that kind (:func:`checks.credential_claims`).
    """
    with engine.begin() as conn:
        grant = _token_offer(conn, access_token, now)
        config = request.get("credential_configuration_id")
        if not isinstance(config, str) or config not in CONFIGURATIONS:
            raise IssuanceError(
                "unknown_credential_configuration",
                "configuration_unknown",
                "credential_configuration_id names no configuration this issuer offers.",
            )
        if config not in grant.configuration_ids:
            raise IssuanceError(
                "invalid_credential_request",
                "configuration_not_offered",
                "This access token was not issued for that credential configuration.",
            )
        proofs = request.get("proofs")
        jwt_proofs = proofs.get("jwt") if isinstance(proofs, dict) else None
        if (
            not isinstance(jwt_proofs, list) or len(jwt_proofs) != 1 or set(proofs) != {"jwt"}  # type: ignore[arg-type]
        ):
            raise _proof_error(
                "proofs_missing", 'The request needs proofs: {"jwt": [one key proof]}.'
            )
        holder_jwk, nonce = check_proof(jwt_proofs[0], issuer=issuer, now=now)
    # The nonce is consumed in its own transaction, last: a failed proof never burns it and
    # a consumed nonce stays consumed even if signing fails later.
    with engine.begin() as conn:
        if not consume_nonce(conn, nonce, now):
            raise IssuanceError(
                "invalid_nonce", "nonce_invalid", "The proof's nonce is unknown, expired or used."
            )
    with engine.begin() as conn:
        person = conn.execute(sa.select(s.person).where(s.person.c.id == grant.person_id)).one()
        today = _london_today(now)
        subjects: list[tuple[int | None, ClaimSet]] = []
        if config == "employment":
            subjects.extend(_employment_claims(conn, person, today))
        elif config == "identity":
            identity = _identity_claims(person, today)
            if identity is not None:
                subjects.append((None, identity))
        else:
            found = checks.credential_claims(conn, person, today).get(config, [])
            subjects.extend((None, claims) for claims in found)
        if not subjects:
            raise IssuanceError(
                "credential_request_denied",
                "nothing_to_attest",
                "The HR record holds nothing this credential could attest today.",
            )
        key = current_key(conn, kek, now)
        issued: list[Issued] = []
        for assignment_id, claims in subjects:
            list_row, allocator = _writable_list(conn, now)
            idx = allocator.allocate()
            ref = StatusReference(status_list_uri(issuer, list_row.uid), idx)
            credential = build_credential(
                claims, issuer=issuer, key=key, holder_jwk=holder_jwk, status=ref, iat=now
            )
            uid = str(uuid.uuid4())
            exp = _credential_exp(credential)
            conn.execute(
                s.passport_credential.insert().values(
                    uid=uid,
                    person_id=person.id,
                    assignment_id=assignment_id,
                    vct=type(claims).vct,
                    status_list_id=list_row.id,
                    status_idx=idx,
                    kid=key.kid,
                    offer_id=grant.id,
                    issued_at=now,
                    expires_at=exp,
                    state=VALID,
                    claims_digest=claims_digest(claims),
                )
            )
            _note_signed(conn, key.kid, exp)
            append(
                conn,
                actor="passport:credential",
                action="passport.credential_issued",
                subject_type="person",
                subject_id=person.id,
                details={"credential": uid, "vct": type(claims).vct, "kid": key.kid},
                at=now,
            )
            issued.append(Issued(uid, type(claims).vct, credential))
    return issued


def _credential_exp(credential: str) -> dt.datetime:
    payload = json_loads(b64url_decode(credential.split("~")[0].split(".")[1]))
    return dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC)


# --- status lists -------------------------------------------------------------------------


def _sign_list(
    conn: Connection, row: Any, data: bytes, *, issuer: str, kek: KeyEncryptionKey, now: dt.datetime
) -> str:
    key = current_key(conn, kek, now)
    token = sign_status_list(
        StatusList(row.size, row.bits, data=data),
        uri=status_list_uri(issuer, row.uid),
        key=key.private_key,
        kid=key.kid,
        iat=now,
        lifetime=STATUS_LIST_LIFETIME,
        ttl=STATUS_LIST_TTL,
    )
    sl = s.passport_status_list
    conn.execute(
        sl.update()
        .where(sl.c.id == row.id)
        .values(data=data, token=token, signed_at=now, updated_at=now, version=sl.c.version + 1)
    )
    return token


def status_list_token(
    engine: Engine, list_uid: str, *, issuer: str, now: dt.datetime, kek: KeyEncryptionKey
) -> str:
    """The signed Status List Token, re-signed when absent or older than the refresh age."""
    sl = s.passport_status_list
    with engine.begin() as conn:
        row = conn.execute(sa.select(sl).where(sl.c.uid == list_uid)).first()
        if row is None:
            raise NotFoundError("There is no such status list.")
        if row.token and row.signed_at and now - _aware(row.signed_at) < STATUS_LIST_REFRESH:
            return str(row.token)
        return _sign_list(conn, row, bytes(row.data), issuer=issuer, kek=kek, now=now)


def _apply_states(
    conn: Connection,
    changes: list[tuple[Any, str, str]],
    *,
    actor: str,
    issuer: str,
    kek: KeyEncryptionKey,
    now: dt.datetime,
) -> None:
    """Set each (credential row, new state, reason) and re-sign every list touched, once."""
    c, sl = s.passport_credential, s.passport_status_list
    by_list: dict[int, list[tuple[Any, str, str]]] = {}
    for change in changes:
        by_list.setdefault(change[0].status_list_id, []).append(change)
    for list_id, items in by_list.items():
        row = conn.execute(sa.select(sl).where(sl.c.id == list_id)).one()
        status_list = StatusList(row.size, row.bits, data=bytes(row.data))
        for cred, state, reason in items:
            status_list.set(cred.status_idx, _STATUS_VALUE[state])
            conn.execute(
                c.update()
                .where(c.c.id == cred.id)
                .values(state=state, state_reason=reason, state_changed_at=now)
            )
            append(
                conn,
                actor=actor,
                action=f"passport.credential_{state if state != VALID else 'reinstated'}",
                subject_type="person",
                subject_id=cred.person_id,
                details={"credential": cred.uid, "vct": cred.vct, "reason": reason},
                at=now,
            )
        _sign_list(conn, row, status_list.to_bytes(), issuer=issuer, kek=kek, now=now)


def set_state(
    engine: Engine,
    credential_uid: str,
    state: str,
    *,
    actor: str,
    reason: str,
    issuer: str,
    now: dt.datetime,
    kek: KeyEncryptionKey,
) -> None:
    """Revoke (permanent), suspend or reinstate one credential; the list is re-signed."""
    if state not in _STATUS_VALUE:
        raise PasaError(f"Unknown credential state {state!r}.")
    c = s.passport_credential
    with engine.begin() as conn:
        cred = conn.execute(sa.select(c).where(c.c.uid == credential_uid)).first()
        if cred is None:
            raise NotFoundError(f"No passport credential {credential_uid}.")
        if cred.state == REVOKED and state != REVOKED:
            raise PasaError("A revoked credential stays revoked; issue a new one.")
        if cred.state == state:
            return
        _apply_states(conn, [(cred, state, reason)], actor=actor, issuer=issuer, kek=kek, now=now)


def revoke(engine: Engine, credential_uid: str, **kwargs: Any) -> None:
    set_state(engine, credential_uid, REVOKED, **kwargs)


def lifecycle_changes(conn: Connection, at: dt.date) -> list[tuple[Any, str, str]]:
    """Employment credentials whose assignment ended (revoke), is suspended (suspend) or is
    no longer suspended (reinstate what the lifecycle suspended)."""
    c, a = s.passport_credential, s.assignment
    rows = conn.execute(
        sa.select(c, a.c.status.label("a_status"), a.c.end_date, a.c.in_extract)
        .join(a, a.c.id == c.c.assignment_id)
        .where(c.c.state.in_([VALID, SUSPENDED]), c.c.vct == EmploymentCredential.vct)
    ).all()
    changes: list[tuple[Any, str, str]] = _leaver_check_changes(conn, at)
    changes += _changed_record_changes(conn, at)
    decided = {row.id for row, _, _ in changes}
    rows = [row for row in rows if row.id not in decided]
    for row in rows:
        ended = (row.end_date is not None and row.end_date <= at) or not row.in_extract
        if ended:
            changes.append((row, REVOKED, "leaver"))
        elif row.a_status == AssignmentStatus.SUSPENDED.value and row.state == VALID:
            changes.append((row, SUSPENDED, "assignment_suspended"))
        elif (
            row.a_status != AssignmentStatus.SUSPENDED.value
            and row.state == SUSPENDED
            and row.state_reason == "assignment_suspended"
        ):
            changes.append((row, VALID, "assignment_active"))
    return changes


def _changed_record_changes(conn: Connection, at: dt.date) -> list[tuple[Any, str, str]]:
    """Valid employment and identity credentials whose claims, worked out from the HR record
    today, differ from what they attest (a new post, a name change, an end date keyed):
    revoked as superseded, so only the up-to-date credential is accepted. A credential whose
    assignment is no longer current is left to the leaver and suspension rules."""
    c = s.passport_credential
    rows = conn.execute(
        sa.select(c).where(
            c.c.state == VALID,
            c.c.claims_digest.is_not(None),
            c.c.vct.in_([EmploymentCredential.vct, IdentityCredential.vct]),
        )
    ).all()
    if not rows:
        return []
    people = {
        int(p.id): p
        for p in conn.execute(
            sa.select(s.person).where(s.person.c.id.in_(sorted({r.person_id for r in rows})))
        )
    }
    employment = _employment_claims_of(conn, people, at)
    out: list[tuple[Any, str, str]] = []
    for row in rows:
        person = people[int(row.person_id)]
        if row.vct == EmploymentCredential.vct:
            current = dict(employment.get(int(row.person_id), [])).get(row.assignment_id)
        else:
            current = _identity_claims(person, at)
        if current is not None and claims_digest(current) != row.claims_digest:
            out.append((row, REVOKED, SUPERSEDED))
    return out


def _leaver_check_changes(conn: Connection, at: dt.date) -> list[tuple[Any, str, str]]:
    """Check credentials (keyed on the person) of people with no assignment continuing past
    ``at``: revoked on the leaving date, like the employment credentials."""
    c, a = s.passport_credential, s.assignment
    continuing = sa.exists().where(
        a.c.person_id == c.c.person_id,
        a.c.in_extract.is_(True),
        sa.or_(a.c.end_date.is_(None), a.c.end_date > at),
    )
    rows = conn.execute(
        sa.select(c).where(
            c.c.state.in_([VALID, SUSPENDED]), c.c.vct.in_(sorted(CHECK_VCTS)), ~continuing
        )
    ).all()
    return [(row, REVOKED, "leaver") for row in rows]


def run_lifecycle(
    engine: Engine,
    at: dt.date,
    *,
    actor: str,
    now: dt.datetime,
    issuer: str,
    kek: KeyEncryptionKey | None = None,
) -> dict[str, int]:
    """Apply :func:`lifecycle_changes` as at ``at``; counts by new state."""
    with engine.begin() as conn:
        changes = lifecycle_changes(conn, at)
        if not changes:
            return {}
        _apply_states(
            conn,
            changes,
            actor=actor,
            issuer=issuer,
            kek=kek or KeyEncryptionKey.from_env(),
            now=now,
        )
        _tell_holders_of_replacements(conn, changes)
    counts: dict[str, int] = {}
    for _, state, _ in changes:
        counts[state] = counts.get(state, 0) + 1
    return counts


def _tell_holders_of_replacements(conn: Connection, changes: list[tuple[Any, str, str]]) -> None:
    """One email per person whose credentials were superseded: collect the new ones."""
    from pasa.service import notify

    replaced: dict[int, list[str]] = {}
    for row, _state, reason in changes:
        if reason == SUPERSEDED:
            replaced.setdefault(int(row.person_id), []).append(_TYPE_WORDS.get(row.vct, "passport"))
    if not replaced:
        return
    p = s.person
    for person_id, email in conn.execute(
        sa.select(p.c.id, p.c.email).where(p.c.id.in_(sorted(replaced)), p.c.email.is_not(None))
    ):
        what = " and ".join(sorted(set(replaced[int(person_id)])))
        notify.queue(conn, notify.credential_replaced(str(email), what))


_TYPE_WORDS = {EmploymentCredential.vct: "employment", IdentityCredential.vct: "identity"}


def passport_lifecycle(engine: Engine, at: dt.date, actor: str) -> str | None:
    """The scheduler pre-step (``pasa.service.scheduler.PRE_STEPS``)."""
    from pasa.service.reconcile_schedule import tick_instant

    now = tick_instant(at, get_settings().timezone)
    counts = run_lifecycle(engine, at, actor=actor, now=now, issuer=issuer_identifier())
    if not counts:
        return None
    words = {REVOKED: "revoked", SUSPENDED: "suspended", VALID: "reinstated"}
    parts = [f"{n} {words[state]}" for state, n in sorted(counts.items())]
    return "passport credentials: " + ", ".join(parts)
