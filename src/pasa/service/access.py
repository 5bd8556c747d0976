"""Who is asking: role bindings, API tokens and the principal of a user or a token.

* **Role bindings** grant ``platform_admin``, ``org_admin``, ``system_owner`` (over one
  target) or ``auditor`` to a sign-in name, in one organisation; granting and revoking are
  audited. Line manager and staff are never granted: :func:`user_principal` works them out
  from HR on the day (see :mod:`pasa.domain.access`).
* **API tokens** belong to one organisation and carry scopes (``scim``, ``api:read``,
  ``api:write``, ``hr:push``). A token is 256 random bits shown once, when created; only its
  SHA-256 is stored. Tokens expire (90 days by default, at most a year) and can be revoked;
  :func:`token_principal` refuses an unknown, expired or revoked token with one sentence
  that never repeats the token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.clock import local_date
from pasa.clock import now as utcnow
from pasa.config import get_settings
from pasa.domain.access import GRANTED_ROLES, Binding, Principal, Role, Scope, parse_scopes
from pasa.domain.errors import NotFoundError, PasaError
from pasa.store import schema as s

TOKEN_PREFIX = "pasa_"  # noqa: S105 - a marker that tells PASA tokens apart, not a secret
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 366
# Last-used times are written at most this often per token (not on every request).
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)
# A line manager keeps seeing a leaver for this long after their last day.
LEAVER_VISIBLE_DAYS = 30


class AccessError(PasaError):
    """A role or token cannot be granted, created or changed as asked."""


class InvalidToken(PasaError):
    """A bearer token that is unknown, expired or revoked."""


def _org_id(conn: Connection, ods_code: str) -> int:
    found = conn.execute(
        sa.select(s.organisation.c.id).where(s.organisation.c.ods_code == ods_code.upper())
    ).scalar()
    if found is None:
        known = ", ".join(
            conn.execute(
                sa.select(s.organisation.c.ods_code).order_by(s.organisation.c.ods_code)
            ).scalars()
        )
        raise NotFoundError(f"no organisation '{ods_code}' (organisations: {known or 'none'})")
    return int(found)


# --- role bindings ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindingRow:
    binding_id: int
    subject: str
    role: Role
    organisation: str | None
    target: str | None
    granted_by: str
    granted_at: dt.datetime

    def describe(self) -> str:
        where = self.organisation or "every organisation"
        over = f", target {self.target}" if self.target else ""
        return f"#{self.binding_id} {self.subject}: {self.role.value} of {where}{over}"


def _subject(subject: str) -> str:
    cleaned = subject.strip().lower()
    if not cleaned or len(cleaned) > 254 or any(c.isspace() for c in cleaned):
        raise AccessError(f"'{subject}' is not a sign-in name (e.g. jane.smith@nhs.net)")
    return cleaned


def grant_role(
    engine: Engine,
    subject: str,
    role: Role | str,
    *,
    organisation: str | None,
    target: str | None = None,
    actor: str,
) -> BindingRow:
    """Grant ``role`` to ``subject`` (audited). Granting what is already held returns it."""
    try:
        role = Role(role)
    except ValueError:
        names = ", ".join(r.value for r in sorted(GRANTED_ROLES))
        raise AccessError(f"unknown role '{role}' (roles that can be granted: {names})") from None
    if role not in GRANTED_ROLES:
        raise AccessError(
            f"{role.value} is not granted: it follows from HR records (the person's "
            "assignments and their line management)"
        )
    subject = _subject(subject)
    if role is Role.PLATFORM_ADMIN:
        if organisation is not None:
            raise AccessError("platform_admin holds for every organisation: give no --org")
    elif organisation is None:
        raise AccessError(f"{role.value} is held in one organisation: give its ODS code")
    if (role is Role.SYSTEM_OWNER) != (target is not None):
        raise AccessError(
            "a system owner owns one target: give --target"
            if role is Role.SYSTEM_OWNER
            else f"only a system owner is granted over a target, not {role.value}"
        )
    with engine.begin() as conn:
        org_id = _org_id(conn, organisation) if organisation is not None else None
        if target is not None and (
            conn.execute(sa.select(s.target.c.id).where(s.target.c.key == target)).scalar() is None
        ):
            raise NotFoundError(f"no target '{target}'")
        rb = s.role_binding
        existing = conn.execute(
            sa.select(rb.c.id).where(
                rb.c.subject == subject,
                rb.c.role == role.value,
                rb.c.organisation_id.is_(None)
                if org_id is None
                else rb.c.organisation_id == org_id,
                rb.c.target_key.is_(None) if target is None else rb.c.target_key == target,
                rb.c.revoked_at.is_(None),
            )
        ).scalar()
        if existing is None:
            existing = conn.execute(
                rb.insert()
                .values(
                    subject=subject,
                    role=role.value,
                    organisation_id=org_id,
                    target_key=target,
                    granted_by=actor,
                    granted_at=utcnow(),
                )
                .returning(rb.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="role.granted",
                subject_type="role_binding",
                subject_id=existing,
                details={
                    "subject": subject,
                    "role": role.value,
                    "organisation": organisation,
                    "target": target,
                },
            )
        return _bindings(conn, binding_id=int(existing))[0]


def revoke_role(engine: Engine, binding_id: int, *, actor: str) -> BindingRow:
    with engine.begin() as conn:
        found = _bindings(conn, binding_id=binding_id)
        if not found:
            raise NotFoundError(f"no role binding #{binding_id} in force")
        conn.execute(
            s.role_binding.update()
            .where(s.role_binding.c.id == binding_id)
            .values(revoked_by=actor, revoked_at=utcnow())
        )
        row = found[0]
        audit.append(
            conn,
            actor=actor,
            action="role.revoked",
            subject_type="role_binding",
            subject_id=binding_id,
            details={
                "subject": row.subject,
                "role": row.role.value,
                "organisation": row.organisation,
            },
        )
        return row


def _bindings(
    conn: Connection, *, subject: str | None = None, binding_id: int | None = None
) -> list[BindingRow]:
    rb, o = s.role_binding, s.organisation
    query = (
        sa.select(
            rb.c.id,
            rb.c.subject,
            rb.c.role,
            o.c.ods_code,
            rb.c.target_key,
            rb.c.granted_by,
            rb.c.granted_at,
        )
        .select_from(rb.outerjoin(o, o.c.id == rb.c.organisation_id))
        .where(rb.c.revoked_at.is_(None))
        .order_by(rb.c.subject, rb.c.id)
    )
    if subject is not None:
        query = query.where(rb.c.subject == subject)
    if binding_id is not None:
        query = query.where(rb.c.id == binding_id)
    return [
        BindingRow(
            r.id, r.subject, Role(r.role), r.ods_code, r.target_key, r.granted_by, r.granted_at
        )
        for r in conn.execute(query)
    ]


def list_bindings(engine: Engine, subject: str | None = None) -> list[BindingRow]:
    with engine.connect() as conn:
        return _bindings(conn, subject=None if subject is None else _subject(subject))


# --- who a signed-in user is ----------------------------------------------------------------


def _linked_person(conn: Connection, subject: str) -> int | None:
    """The person a sign-in name belongs to: an explicit ``sign_in`` identifier, else the one
    person whose e-mail address it is."""
    pi = s.person_identifier
    linked = conn.execute(
        sa.select(pi.c.person_id).where(pi.c.scheme == "sign_in", pi.c.value == subject)
    ).scalar()
    if linked is not None:
        return int(linked)
    by_email = conn.execute(
        sa.select(s.person.c.id).where(sa.func.lower(s.person.c.email) == subject).limit(2)
    ).all()
    return int(by_email[0][0]) if len(by_email) == 1 else None


def _person_organisations_and_reports(
    conn: Connection, person_id: int, at: dt.date
) -> tuple[frozenset[str], dict[int, frozenset[str]]]:
    a, o = s.assignment, s.organisation
    current = conn.execute(
        sa.select(a.c.organisation_id, o.c.ods_code, a.c.assignment_number)
        .select_from(a.join(o, o.c.id == a.c.organisation_id))
        .where(
            a.c.person_id == person_id,
            a.c.start_date <= at,
            sa.or_(a.c.end_date.is_(None), a.c.end_date >= at),
        )
    ).all()
    orgs = frozenset(r.ods_code for r in current)
    reports: dict[int, set[str]] = {}
    visible_from = at - dt.timedelta(days=LEAVER_VISIBLE_DAYS)
    for org_id, ods_code, number in {
        (r.organisation_id, r.ods_code, r.assignment_number) for r in current
    }:
        # Upcoming starters are reports already; leavers stay visible for a while.
        for (report,) in conn.execute(
            sa.select(a.c.person_id).where(
                a.c.organisation_id == org_id,
                a.c.supervisor_assignment_number == number,
                a.c.person_id != person_id,
                sa.or_(a.c.end_date.is_(None), a.c.end_date >= visible_from),
            )
        ):
            reports.setdefault(int(report), set()).add(ods_code)
    return orgs, {pid: frozenset(v) for pid, v in reports.items()}


def user_principal(
    engine: Engine, subject: str, *, display_name: str = "", at: dt.date | None = None
) -> Principal:
    """The principal of a signed-in user on ``at`` (today): bindings, person, reports."""
    subject = _subject(subject)
    at = at or local_date(utcnow(), get_settings().timezone)
    with engine.connect() as conn:
        bindings = frozenset(
            Binding(b.role, b.organisation, b.target) for b in _bindings(conn, subject=subject)
        )
        person_id = _linked_person(conn, subject)
        orgs: frozenset[str] = frozenset()
        reports: dict[int, frozenset[str]] = {}
        if person_id is not None:
            orgs, reports = _person_organisations_and_reports(conn, person_id, at)
    return Principal(
        subject=subject,
        display_name=display_name or subject,
        person_id=person_id,
        person_organisations=orgs,
        bindings=bindings,
        reports=reports,
    )


# --- API tokens -------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: int
    name: str
    prefix: str
    organisation: str
    scopes: tuple[Scope, ...]
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if _aware(self.expires_at) <= now else "active"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``secret`` is the only time the token is ever available."""

    row: TokenRow
    secret: str


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def create_token(
    engine: Engine,
    *,
    organisation: str,
    scopes: Iterable[str],
    name: str,
    actor: str,
    days: int = DEFAULT_TOKEN_DAYS,
    now: dt.datetime | None = None,
) -> NewToken:
    """A new API token for one organisation (audited, without the token itself)."""
    try:
        wanted = parse_scopes(scopes)
    except ValueError as exc:
        raise AccessError(str(exc)) from None
    name = name.strip()
    if not name or len(name) > 200:
        raise AccessError("a token needs a name of 1 to 200 characters (what uses it)")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccessError(f"a token lives 1 to {MAX_TOKEN_DAYS} days, not {days}")
    created = now or utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        org_id = _org_id(conn, organisation)
        token_id = conn.execute(
            s.api_token.insert()
            .values(
                name=name,
                prefix=secret[: len(TOKEN_PREFIX) + 6],
                token_hash=_hash(secret),
                organisation_id=org_id,
                scopes=sorted(x.value for x in wanted),
                created_by=actor,
                created_at=created,
                expires_at=created + dt.timedelta(days=days),
            )
            .returning(s.api_token.c.id)
        ).scalar_one()
        audit.append(
            conn,
            actor=actor,
            action="token.created",
            subject_type="api_token",
            subject_id=token_id,
            details={
                "name": name,
                "organisation": organisation.upper(),
                "scopes": sorted(x.value for x in wanted),
                "days": days,
            },
        )
        return NewToken(_tokens(conn, token_id=token_id)[0], secret)


def _tokens(conn: Connection, *, token_id: int | None = None) -> list[TokenRow]:
    t, o = s.api_token, s.organisation
    query = (
        sa.select(t, o.c.ods_code)
        .select_from(t.join(o, o.c.id == t.c.organisation_id))
        .order_by(t.c.id)
    )
    if token_id is not None:
        query = query.where(t.c.id == token_id)
    return [
        TokenRow(
            r.id,
            r.name,
            r.prefix,
            r.ods_code,
            tuple(Scope(x) for x in r.scopes),
            r.created_by,
            _aware(r.created_at),
            _aware(r.expires_at),
            None if r.last_used_at is None else _aware(r.last_used_at),
            None if r.revoked_at is None else _aware(r.revoked_at),
        )
        for r in conn.execute(query)
    ]


def list_tokens(engine: Engine) -> list[TokenRow]:
    with engine.connect() as conn:
        return _tokens(conn)


def revoke_token(engine: Engine, token_id: int, *, actor: str) -> TokenRow:
    with engine.begin() as conn:
        found = _tokens(conn, token_id=token_id)
        if not found:
            raise NotFoundError(f"no API token #{token_id}")
        if found[0].revoked_at is None:
            conn.execute(
                s.api_token.update()
                .where(s.api_token.c.id == token_id)
                .values(revoked_by=actor, revoked_at=utcnow())
            )
            audit.append(
                conn,
                actor=actor,
                action="token.revoked",
                subject_type="api_token",
                subject_id=token_id,
                details={"name": found[0].name, "organisation": found[0].organisation},
            )
        return _tokens(conn, token_id=token_id)[0]


def token_principal(engine: Engine, token: str, *, now: dt.datetime | None = None) -> Principal:
    """The principal of a bearer token, or :class:`InvalidToken` (never naming the token)."""
    when = now or utcnow()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise InvalidToken("not a PASA API token")
    digest = _hash(token)
    t, o = s.api_token, s.organisation
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(t, o.c.ods_code)
            .select_from(t.join(o, o.c.id == t.c.organisation_id))
            .where(t.c.token_hash == digest)
        ).first()
    # The lookup is by hash (an index, not a comparison of secrets); compare again in
    # constant time so a partial match can never be told apart by timing.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise InvalidToken("unknown API token")
    if row.revoked_at is not None:
        raise InvalidToken(f"API token '{row.name}' ({row.prefix}…) was revoked")
    if _aware(row.expires_at) <= when:
        raise InvalidToken(f"API token '{row.name}' ({row.prefix}…) expired")
    if row.last_used_at is None or _aware(row.last_used_at) + LAST_USED_RESOLUTION <= when:
        with engine.begin() as conn:
            conn.execute(t.update().where(t.c.id == row.id).values(last_used_at=when))
    return Principal(
        subject=f"token:{row.id}",
        display_name=f"API token '{row.name}'",
        scopes=frozenset(Scope(x) for x in row.scopes),
        token_organisation=row.ods_code,
    )
