"""Digital Staff Passport verifier (OpenID4VP 1.0) and the receiving organisation's flow.

1. :func:`create_request` — the identity team expects a starter (names, start date, the
   intended position at their organisation): a verification session with a random ``state``
   and a 128-bit single-use nonce (only its SHA-256 stored), valid :data:`SESSION_LIFETIME`,
   returned as an ``openid4vp://`` request (:mod:`pasa.passport.openid4vp`).
2. :func:`receive_response` — the wallet's direct_post: parse, then verify every
   presentation (trust registry, issuer keys from ``/.well-known/jwt-vc-issuer`` over HTTP,
   status list cached for its ``ttl``, key binding to our client id and the session nonce).
   Every outcome, accepted or rejected with its reason, is a ``passport_verification`` row
   and an audit entry. Accepting marks the session used in the same transaction (single use).
3. On acceptance the starter is created (or found by a cross-referenced identifier) as a
   pre-hire person with a provisional assignment in the intended post from the start date,
   identifiers cross-referenced (previous ESR assignment number, GMC/NMC/HCPC number), and
   pre-provisioning is planned (:func:`pasa.service.provisioning.apply`).
4. :func:`link_esr_record` — when the new employer's ESR record is known, the provisional
   assignment takes its ESR numbers, so the next extract updates this person, not a new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Connection, Engine

from pasa.audit.log import append
from pasa.clock import local_date
from pasa.config import get_settings
from pasa.domain.errors import NotFoundError, PasaError
from pasa.domain.lifecycle import PERSON_SCOPE, LifecycleState
from pasa.hr.passport_link import EXPLICIT, link_provisional, provisional_number
from pasa.passport._jose import b64url_encode, parse_jws
from pasa.passport.errors import VerificationError
from pasa.passport.keys import jwks_resolver
from pasa.passport.openid4vp import (
    DEFAULT_QUERY_IDS,
    ResponseError,
    StatusLookup,
    VerifiedPresentations,
    client_id,
    parse_response,
    queries_for,
    request_uri,
    response_uri_of,
    verify_presentations,
)
from pasa.passport.sdjwt import IssuerKeyResolver
from pasa.passport.status_list import StatusListToken, verify_status_list
from pasa.passport.trust import TrustedIssuer, TrustRegistry, check_issuer_identifier, vct_of
from pasa.store import schema as s

SESSION_LIFETIME = dt.timedelta(minutes=10)
DEFAULT_STATUS_TTL = dt.timedelta(minutes=5)  # a status list token without ttl
ESR_ASSIGNMENT_SCHEME = "esr_assignment_number"  # the previous employer's, issuer = its ODS
PENDING, ACCEPTED, EXPIRED, CLOSED = "pending", "accepted", "expired", "closed"
# Refused answers a request takes before it closes: a wallet that gets it wrong can retry, a
# party trying presentation after presentation against one request cannot go on.
MAX_REFUSED_ANSWERS = 5


class VerifierSettings(BaseSettings):
    """``PASA_PASSPORT_VERIFIER_*``: how the verifier fetches issuer metadata and status."""

    model_config = SettingsConfigDict(env_prefix="PASA_PASSPORT_VERIFIER_", extra="ignore")

    # Plain http to 127.0.0.1 / localhost / ::1 only: tests and a single-machine demo.
    allow_loopback_http: bool = False
    fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    max_fetch_bytes: int = Field(default=1024 * 1024, gt=0)


class VerifierError(PasaError):
    """A request refused at the boundary (bad input for a verification request)."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


# --------------------------------------------------------------------------- HTTP fetching


@dataclass
class Fetcher:
    """GET over HTTPS with a timeout, a size cap and no redirects (issuer metadata, status)."""

    settings: VerifierSettings = field(default_factory=VerifierSettings)
    transport: httpx.BaseTransport | None = None

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if parts.scheme == "https" and host:
            return
        if parts.scheme == "http" and loopback and self.settings.allow_loopback_http:
            return
        raise VerificationError("fetch_refused", "Only https:// issuer addresses are fetched.")

    def get(self, url: str, accept: str) -> str:
        self.check_url(url)
        limit = self.settings.max_fetch_bytes
        try:
            with (
                httpx.Client(
                    timeout=self.settings.fetch_timeout_seconds,
                    follow_redirects=False,
                    transport=self.transport,
                ) as client,
                client.stream("GET", url, headers={"Accept": accept}) as response,
            ):
                if response.status_code != 200:
                    raise VerificationError(
                        "fetch_failed", f"The issuer answered HTTP {response.status_code}."
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise VerificationError(
                            "fetch_too_large", "The issuer's answer is larger than we accept."
                        )
        except httpx.HTTPError as exc:
            raise VerificationError("fetch_failed", "The issuer could not be reached.") from exc
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError("fetch_failed", "The issuer's answer is not text.") from exc


def jwt_vc_issuer_url(issuer: str) -> str:
    """``/.well-known/jwt-vc-issuer`` inserted between host and path (SD-JWT VC)."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}/.well-known/jwt-vc-issuer{parts.path.rstrip('/')}"


class IssuerKeys:
    """Issuer JWKS fetched once per verifier call, keyed by ``iss``; metadata must name it."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self._jwks: dict[str, dict[str, Any]] = {}

    def jwks(self, issuer: str) -> dict[str, Any]:
        if issuer not in self._jwks:
            import json

            try:
                meta = json.loads(self.fetcher.get(jwt_vc_issuer_url(issuer), "application/json"))
            except ValueError as exc:
                raise VerificationError(
                    "issuer_metadata_invalid", "The issuer's key metadata is not JSON."
                ) from exc
            if not isinstance(meta, dict) or meta.get("issuer") != issuer:
                raise VerificationError(
                    "issuer_metadata_invalid", "The issuer's key metadata names another issuer."
                )
            jwks = meta.get("jwks")
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                raise VerificationError(
                    "issuer_metadata_invalid", "The issuer's key metadata has no jwks."
                )
            self._jwks[issuer] = jwks
        return self._jwks[issuer]

    def resolver(self) -> IssuerKeyResolver:
        def resolve(header: Any, payload: Any) -> Any:
            iss = payload.get("iss")
            if not isinstance(iss, str):
                return None
            try:
                return jwks_resolver({iss: self.jwks(iss)})(header, payload)
            except ValueError as exc:  # a key in the JWKS that is not P-256
                raise VerificationError(
                    "issuer_metadata_invalid", "The issuer publishes an unusable key."
                ) from exc

        return resolve


def status_lookup(
    engine: Engine, keys: IssuerKeys, fetcher: Fetcher, now: dt.datetime, seen: list[dt.datetime]
) -> StatusLookup:
    """Status List Tokens from the cache while fresh (``ttl``, capped by ``exp``), else fetched.

    A cached token is verified again each time (signature, ``sub``, ``exp``); ``seen`` collects
    when each token used was fetched (the "status checked at" of the record).
    """

    def lookup(uri: str, issuer: str) -> StatusListToken:
        if not uri.startswith(issuer.rstrip("/") + "/"):
            raise VerificationError(
                "status_reference_untrusted", "The status list is not published by the issuer."
            )
        c = s.passport_status_cache
        with engine.connect() as conn:
            row = conn.execute(sa.select(c).where(c.c.uri == uri)).first()
        if row is not None and _aware(row.expires_at) > now:
            token, fetched = row.token, _aware(row.fetched_at)
        else:
            token, fetched = fetcher.get(uri, "application/statuslist+jwt"), now
        try:
            kid = parse_jws(token, what="status list token", prefix="status_token").header.get(
                "kid"
            )
        except VerificationError:
            raise
        key = keys.resolver()({"kid": kid}, {"iss": issuer})
        if key is None:
            raise VerificationError(
                "status_token_signature", "The status list is not signed by a key of the issuer."
            )
        verified = verify_status_list(token, key=key, expected_uri=uri, now=now)
        if fetched == now and (row is None or _aware(row.expires_at) <= now):
            ttl = dt.timedelta(seconds=verified.ttl) if verified.ttl else DEFAULT_STATUS_TTL
            expires = now + ttl
            if verified.exp is not None:
                expires = min(expires, dt.datetime.fromtimestamp(verified.exp, dt.UTC))
            try:
                with engine.begin() as conn:
                    conn.execute(c.delete().where(c.c.uri == uri))
                    conn.execute(
                        c.insert().values(
                            uri=uri, issuer=issuer, token=token, fetched_at=now, expires_at=expires
                        )
                    )
            except sa.exc.IntegrityError:
                pass  # a concurrent verification cached it first; either copy will do
        seen.append(fetched)
        return verified

    return lookup


# --------------------------------------------------------------------------- trust registry


def add_trusted_issuer(
    engine: Engine,
    issuer: str,
    *,
    organisation_code: str,
    types: Sequence[str],
    actor: str,
    now: dt.datetime,
    settings: VerifierSettings | None = None,
) -> list[TrustedIssuer]:
    """Trust ``issuer`` (of ``organisation_code``) for each credential type in ``types``."""
    config = settings or VerifierSettings()
    try:
        ident = check_issuer_identifier(issuer, allow_loopback_http=config.allow_loopback_http)
        entries = [TrustedIssuer(ident, organisation_code.upper(), vct_of(t)) for t in types]
    except ValueError as exc:
        raise VerifierError(str(exc)) from exc
    if not entries:
        raise VerifierError("name at least one credential type to trust the issuer for")
    t = s.passport_trusted_issuer
    with engine.begin() as conn:
        for entry in entries:
            exists = conn.scalar(
                sa.select(t.c.id).where(t.c.issuer == entry.issuer, t.c.vct == entry.vct)
            )
            if exists is None:
                conn.execute(
                    t.insert().values(
                        issuer=entry.issuer,
                        organisation_code=entry.organisation_code,
                        vct=entry.vct,
                        added_by=actor,
                        added_at=now,
                    )
                )
        append(
            conn,
            actor=actor,
            action="passport.trust.add",
            subject_type="passport_issuer",
            subject_id=ident,
            details={"organisation": entries[0].organisation_code, "vct": [e.vct for e in entries]},
            at=now,
        )
    return entries


def remove_trusted_issuer(
    engine: Engine, issuer: str, *, types: Sequence[str] = (), actor: str, now: dt.datetime
) -> int:
    """Stop trusting ``issuer`` (for ``types`` only, or altogether); the number removed."""
    t = s.passport_trusted_issuer
    try:
        vcts = [vct_of(x) for x in types]
    except ValueError as exc:
        raise VerifierError(str(exc)) from exc
    ident = issuer.rstrip("/")
    with engine.begin() as conn:
        where = [t.c.issuer == ident] + ([t.c.vct.in_(vcts)] if vcts else [])
        removed = conn.execute(t.delete().where(*where)).rowcount
        if not removed:
            raise NotFoundError(f"{ident} is not trusted for those credential types")
        append(
            conn,
            actor=actor,
            action="passport.trust.remove",
            subject_type="passport_issuer",
            subject_id=ident,
            details={"vct": vcts or "all"},
            at=now,
        )
    return int(removed)


def trusted_issuers(conn: Connection) -> list[TrustedIssuer]:
    t = s.passport_trusted_issuer
    return [
        TrustedIssuer(r.issuer, r.organisation_code, r.vct)
        for r in conn.execute(sa.select(t).order_by(t.c.issuer, t.c.vct))
    ]


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class NewRequest:
    state: str
    uri: str
    expires_at: dt.datetime
    client_id: str


def create_request(
    engine: Engine,
    *,
    organisation: str,
    given_name: str,
    family_name: str,
    start_date: dt.date,
    position_number: str,
    actor: str,
    public_url: str,
    now: dt.datetime,
    query_ids: Collection[str] = DEFAULT_QUERY_IDS,
) -> NewRequest:
    """A verification session for an expected starter and its ``openid4vp://`` request."""
    given, family = given_name.strip(), family_name.strip()
    if not (0 < len(given) <= 100 and 0 < len(family) <= 100):
        raise VerifierError("given and family names are required (at most 100 characters each)")
    if start_date < local_date(now, get_settings().timezone):
        raise VerifierError(f"the start date {start_date.isoformat()} is in the past")
    try:
        queries = [q.id for q in queries_for(query_ids)]
    except ValueError as exc:
        raise VerifierError(str(exc)) from exc
    o, p = s.organisation, s.position
    state, nonce = secrets.token_urlsafe(24), b64url_encode(secrets.token_bytes(16))
    response_uri = response_uri_of(public_url)
    with engine.begin() as conn:
        org = conn.execute(sa.select(o).where(o.c.ods_code == organisation)).first()
        if org is None:
            raise NotFoundError(f"no organisation {organisation} in the hub")
        position_id = conn.scalar(
            sa.select(p.c.id).where(
                p.c.organisation_id == org.id, p.c.position_number == position_number
            )
        )
        if position_id is None:
            raise VerifierError(f"no position {position_number} at {organisation}")
        expires = now + SESSION_LIFETIME
        conn.execute(
            s.passport_verifier_session.insert().values(
                state=state,
                nonce_hash=_hash(nonce),
                organisation_id=org.id,
                query_ids=queries,
                given_name=given,
                family_name=family,
                start_date=start_date,
                position_id=position_id,
                requested_by=actor,
                created_at=now,
                expires_at=expires,
                status=PENDING,
            )
        )
        append(
            conn,
            actor=actor,
            action="passport.verification.requested",
            subject_type="passport_verifier_session",
            subject_id=state,
            details={
                "organisation": organisation,
                "position": position_number,
                "start_date": start_date.isoformat(),
                "credentials": queries,
            },
            at=now,
        )
    uri = request_uri(
        response_uri=response_uri,
        nonce=nonce,
        state=state,
        query_ids=queries,
        client_name=org.name,
    )
    return NewRequest(state, uri, expires, client_id(response_uri))


def session_outcome(engine: Engine, state: str) -> dict[str, Any]:
    """A session's status, the organisation it belongs to and its latest check outcome."""
    vs, v, o, pe = (
        s.passport_verifier_session,
        s.passport_verification,
        s.organisation,
        s.person,
    )
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(vs, o.c.ods_code, pe.c.uid.label("person_uid"))
            .join(o, o.c.id == vs.c.organisation_id)
            .outerjoin(pe, pe.c.id == vs.c.person_id)
            .where(vs.c.state == state)
        ).first()
        if row is None:
            raise NotFoundError("no such verification request")
        checks = conn.execute(sa.select(v).where(v.c.session_id == row.id).order_by(v.c.id)).all()
    return {
        "state": row.state,
        "organisation": row.ods_code,
        "status": row.status,
        "start_date": row.start_date.isoformat(),
        "expires_at": _aware(row.expires_at).isoformat(),
        "person": row.person_uid,
        "checks": [
            {
                "outcome": c.outcome,
                "reason": c.reason,
                "detail": c.detail,
                "relied_on": c.relied_on,
                "at": _aware(c.created_at).isoformat(),
            }
            for c in checks
        ],
    }


# --------------------------------------------------------------------------- the response


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: bool
    error: str | None = None  # OAuth error for the wallet
    reason: str | None = None  # our specific code
    message: str | None = None
    person_id: int | None = None
    redirect_uri: str | None = None

    def body(self) -> dict[str, str]:
        if self.accepted:
            return {}
        return {
            "error": self.error or "invalid_request",
            "error_description": self.message or "",
            "reason": self.reason or "",
        }


def _record(
    conn: Connection,
    *,
    session: Any,
    state: str | None,
    outcome: str,
    reason: str | None,
    detail: str | None,
    relied_on: dict[str, Any] | None,
    status_checked_at: dt.datetime | None,
    now: dt.datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        s.passport_verification.insert().values(
            session_id=session.id if session is not None else None,
            outcome=outcome,
            reason=reason,
            detail=(detail or "")[:300] or None,
            relied_on=relied_on,
            status_checked_at=status_checked_at,
            created_at=now,
        )
    )
    append(
        conn,
        actor="wallet",
        action=f"passport.verification.{outcome}",
        subject_type="passport_verifier_session",
        subject_id=state or "-",
        details={"reason": reason, "relied_on": relied_on, **(extra or {})},
        at=now,
    )


def receive_response(
    engine: Engine,
    body: bytes,
    *,
    public_url: str,
    now: dt.datetime,
    fetcher: Fetcher | None = None,
    plan: bool = True,
) -> Outcome:
    """Handle a direct_post response: verify, record, and on success pre-hire the starter."""
    fetch = fetcher or Fetcher()
    response_uri = response_uri_of(public_url)
    try:
        response = parse_response(body)
    except ResponseError as exc:
        with engine.begin() as conn:
            _record(
                conn,
                session=None,
                state=None,
                outcome="rejected",
                reason=exc.code,
                detail=exc.message,
                relied_on=None,
                status_checked_at=None,
                now=now,
            )
        return Outcome(False, exc.error, exc.code, exc.message)
    vs = s.passport_verifier_session
    with engine.connect() as conn:
        session = conn.execute(sa.select(vs).where(vs.c.state == response.state)).first()
        registry = TrustRegistry(trusted_issuers(conn))
    if session is None:
        with engine.begin() as conn:
            _record(
                conn,
                session=None,
                state=None,
                outcome="rejected",
                reason="state_unknown",
                detail="unknown state",
                relied_on=None,
                status_checked_at=None,
                now=now,
            )
        return Outcome(
            False, "invalid_request", "state_unknown", "The response's state is not one we issued."
        )
    if session.status == PENDING and _aware(session.expires_at) <= now:
        return _reject(
            engine,
            session,
            now,
            VerificationError(
                "session_expired", "The verification request has expired; ask for a new one."
            ),
        )
    if session.status == CLOSED:
        return _reject(
            engine,
            session,
            now,
            VerificationError(
                "too_many_attempts",
                f"The verification request was closed after {MAX_REFUSED_ANSWERS} refused "
                "answers; ask for a new one.",
            ),
        )
    seen: list[dt.datetime] = []
    keys = IssuerKeys(fetch)

    def nonce_check(nonce: str) -> bool:
        # The session's nonce while it is unused; acceptance below makes it single use.
        return session.status == PENDING and secrets.compare_digest(
            _hash(nonce), session.nonce_hash
        )

    try:
        verified = verify_presentations(
            response,
            list(session.query_ids),
            issuer_keys=keys.resolver(),
            registry=registry,
            status_lookup=status_lookup(engine, keys, fetch, now, seen),
            nonce_check=nonce_check,
            audience=client_id(response_uri),
            now=now,
        )
    except VerificationError as exc:
        return _reject(engine, session, now, exc)
    return _accept(engine, session, verified, registry, now, min(seen) if seen else None, plan)


def _reject(engine: Engine, session: Any, now: dt.datetime, exc: VerificationError) -> Outcome:
    error = (
        "invalid_request"
        if exc.code in {"session_expired", "too_many_attempts"}
        else "access_denied"
    )
    vs, v = s.passport_verifier_session, s.passport_verification
    with engine.begin() as conn:
        _record(
            conn,
            session=session,
            state=session.state,
            outcome="rejected",
            reason=exc.code,
            detail=exc.message,
            relied_on=None,
            status_checked_at=None,
            now=now,
        )
        refused = conn.scalar(
            sa.select(sa.func.count())
            .select_from(v)
            .where(v.c.session_id == session.id, v.c.outcome == "rejected")
        )
        if int(refused or 0) >= MAX_REFUSED_ANSWERS:
            closed = conn.execute(
                vs.update()
                .where(vs.c.id == session.id, vs.c.status == PENDING)
                .values(status=CLOSED, completed_at=now)
            ).rowcount
            if closed:
                append(
                    conn,
                    actor="passport-verifier",
                    action="passport.verification.closed",
                    subject_type="passport_verifier_session",
                    subject_id=session.id,
                    details={"refused_answers": int(refused or 0)},
                    at=now,
                )
    return Outcome(False, error, exc.code, exc.message)


def _accept(
    engine: Engine,
    session: Any,
    verified: VerifiedPresentations,
    registry: TrustRegistry,
    now: dt.datetime,
    status_checked_at: dt.datetime | None,
    plan: bool,
) -> Outcome:
    vs = s.passport_verifier_session
    relied_on = verified.relied_on()
    for entry in relied_on.values():
        entry["issuer_organisation"] = registry.organisation_of(entry["issuer"])
    with engine.begin() as conn:
        used = conn.execute(
            vs.update()
            .where(vs.c.id == session.id, vs.c.status == PENDING)
            .values(status=ACCEPTED, completed_at=now)
        ).rowcount
        if used == 1:
            person_id, created = _pre_hire(conn, session, verified, now)
            conn.execute(vs.update().where(vs.c.id == session.id).values(person_id=person_id))
            _record(
                conn,
                session=session,
                state=session.state,
                outcome="accepted",
                reason=None,
                detail=None,
                relied_on=relied_on,
                status_checked_at=status_checked_at,
                now=now,
                extra={"person_id": person_id, "person_created": created},
            )
    if used != 1:  # a concurrent response with the same nonce won the race
        return _reject(
            engine,
            session,
            now,
            VerificationError("kb_nonce", "The Key Binding JWT's nonce was already used."),
        )
    if plan:
        from pasa.service import provisioning

        provisioning.apply(
            engine,
            local_date(now, get_settings().timezone),
            actor=f"passport:{session.state}",
            person_ids=[person_id],
        )
    return Outcome(True, person_id=person_id)


def _find_person(conn: Connection, keys: list[tuple[str, str, str]]) -> int | None:
    pi = s.person_identifier
    for scheme, issuer, value in keys:
        found = conn.scalar(
            sa.select(pi.c.person_id).where(
                pi.c.scheme == scheme, pi.c.issuer == issuer, pi.c.value == value
            )
        )
        if found is not None:
            return int(found)
    return None


def _pre_hire(
    conn: Connection, session: Any, verified: VerifiedPresentations, now: dt.datetime
) -> tuple[int, bool]:
    """The starter as a pre-hire person with a provisional assignment; (person id, created)."""
    employment = verified.claims("employment")
    identity = verified.claims("identity")
    registration = verified.claims("professional_registration")
    identifiers: list[tuple[str, str, str]] = []
    if registration:
        identifiers.append(
            (str(registration["regulator"]).lower(), "", str(registration["registration_number"]))
        )
    if employment:
        identifiers.append(
            (
                ESR_ASSIGNMENT_SCHEME,
                str(employment["organisation_code"]),
                str(employment["assignment_number"]),
            )
        )
    person_id = _find_person(conn, identifiers)
    created = person_id is None
    names = employment or identity or registration
    birthdate = identity.get("birthdate")
    if person_id is None:
        person_id = int(
            conn.execute(
                s.person.insert()
                .values(
                    uid=str(uuid.uuid4()),
                    first_name=str(names.get("given_name", session.given_name))[:100],
                    last_name=str(names.get("family_name", session.family_name))[:100],
                    date_of_birth=dt.date.fromisoformat(birthdate) if birthdate else None,
                    created_at=now,
                    updated_at=now,
                )
                .returning(s.person.c.id)
            ).scalar_one()
        )
    pi = s.person_identifier
    for scheme, issuer, value in identifiers:
        if _find_person(conn, [(scheme, issuer, value)]) is None:
            conn.execute(
                pi.insert().values(
                    person_id=person_id, scheme=scheme, issuer=issuer, value=value, created_at=now
                )
            )
    # Provisional ESR numbers until the new employer's record exists (link_esr_record).
    provisional = provisional_number(session.state)
    org_code = conn.scalar(
        sa.select(s.organisation.c.ods_code).where(s.organisation.c.id == session.organisation_id)
    )
    conn.execute(
        s.assignment.insert().values(
            organisation_id=session.organisation_id,
            assignment_number=provisional,
            person_id=person_id,
            employee_number=provisional,
            position_id=session.position_id,
            category="Permanent",
            status="Active Assignment",
            is_primary=True,
            start_date=session.start_date,
            wte=1,
            row_hash=_hash(f"passport:{session.state}"),
            updated_at=now,
        )
    )
    today = local_date(now, get_settings().timezone)
    ls = s.lifecycle_state
    for scope in (PERSON_SCOPE, f"{org_code}/{provisional}"):
        conn.execute(ls.delete().where(ls.c.person_id == person_id, ls.c.scope == scope))
        conn.execute(
            ls.insert().values(
                person_id=person_id,
                scope=scope,
                state=LifecycleState.PRE_HIRE.value,
                since=today,
                updated_at=now,
            )
        )
        conn.execute(
            s.lifecycle_transition.insert().values(
                person_id=person_id,
                scope=scope,
                from_state=None,
                to_state=LifecycleState.PRE_HIRE.value,
                effective_date=today,
                recorded_at=now,
            )
        )
    return person_id, created


def link_esr_record(
    engine: Engine,
    state: str,
    *,
    employee_number: str,
    assignment_number: str,
    actor: str,
    now: dt.datetime,
) -> None:
    """Give the provisional assignment of an accepted session its ESR numbers.

    The next ESR extract then finds the person by the ESR employee number (the importer's own
    first match) and the assignment by its number: it updates them instead of creating a
    duplicate starter.
    """
    for name, value in (
        ("employee number", employee_number),
        ("assignment number", assignment_number),
    ):
        if not (0 < len(value.strip()) <= 20):
            raise VerifierError(f"the ESR {name} must be 1 to 20 characters")
    vs = s.passport_verifier_session
    with engine.begin() as conn:
        session = conn.execute(sa.select(vs).where(vs.c.state == state)).first()
        if session is None or session.person_id is None:
            raise NotFoundError("no accepted verification request with that state")
        if not link_provisional(
            conn,
            state=state,
            organisation_id=session.organisation_id,
            person_id=session.person_id,
            employee_number=employee_number.strip(),
            assignment_number=assignment_number.strip(),
            matched_on=EXPLICIT,
            actor=actor,
            now=now,
        ):
            raise VerifierError("the provisional assignment was already linked or is gone")
