"""Day-one credential handover: a one-time activation code the line manager reveals.

For a target whose policy sets ``lifecycle.credential_handover: true``, every account whose
creation succeeded gets a ``credential_handover`` row (*waiting*), naming the line manager
(the holder of the supervisor assignment of the person's primary assignment). On day one the
manager *reveals* the code (``pasa handover reveal ID``): it is shown once and only its
SHA-256 is stored. The new starter *redeems* it at ``/activate`` with a password of their
choosing, which PASA sets in the target (``Connector.set_password``).

Neither the code nor the password is ever written to the database (other than the code's
hash), to an audit entry or to a log line; errors never repeat them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from pasa.audit import log as audit
from pasa.clock import Clock
from pasa.clock import now as _clock_now
from pasa.connectors.base import Connector, ConnectorError, TransientError
from pasa.domain.errors import ConfigurationError, NotFoundError, PasaError
from pasa.service.lifecycle import append_audit_many
from pasa.store import hub
from pasa.store import schema as s
from pasa.store.policy_repo import load_active_policy

log = structlog.get_logger(__name__)

ACTIVATION_PATH = "/activate"
DEFAULT_TTL = dt.timedelta(hours=72)
MAX_FAILED_ATTEMPTS = 5
MIN_PASSWORD_LENGTH = 12
_OPEN = ("waiting", "revealed")


class HandoverError(PasaError):
    """A handover step that cannot be done, in one sentence (never repeating a secret)."""


@dataclass(frozen=True, slots=True)
class RevealedCode:
    handover_id: int
    code: str
    activation_path: str
    expires_at: dt.datetime
    username: str
    target: str


@dataclass(frozen=True, slots=True)
class HandoverRow:
    id: int
    person: str
    target: str
    username: str
    manager: str | None
    status: str
    expires_at: dt.datetime | None


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# --- prepare -------------------------------------------------------------------------------


def prepare_handovers(engine: Engine, at: dt.date, *, actor: str) -> str | None:
    """Create a *waiting* handover for every new account on a handover target (idempotent)."""
    now = _clock_now()
    with engine.begin() as conn:
        try:
            document = load_active_policy(conn)
        except ConfigurationError:
            return None
        keys = [t.key for t in document.targets if t.lifecycle.credential_handover]
        if not keys:
            return None
        acc, t, op, ch = s.account, s.target, s.operation, s.credential_handover
        created = sa.exists().where(
            op.c.target_id == acc.c.target_id,
            op.c.person_id == acc.c.person_id,
            op.c.kind == "create_account",
            op.c.status == "succeeded",
        )
        has_row = sa.exists().where(ch.c.account_id == acc.c.id)
        candidates = conn.execute(
            sa.select(acc.c.id, acc.c.person_id, acc.c.username, t.c.key)
            .select_from(acc.join(t, t.c.id == acc.c.target_id))
            .where(t.c.key.in_(keys), acc.c.status != "deleted", created, ~has_row)
            .order_by(acc.c.id)
        ).all()
        if not candidates:
            return None
        managers = _managers(conn, {r.person_id for r in candidates}, at)
        rows = [
            {
                "account_id": r.id,
                "person_id": r.person_id,
                "status": "waiting",
                "manager_person_id": managers.get(r.person_id),
                "created_at": now,
            }
            for r in candidates
        ]
        conn.execute(ch.insert(), rows)
        ids = {
            r.account_id: r.id
            for r in conn.execute(
                sa.select(ch.c.id, ch.c.account_id).where(
                    ch.c.account_id.in_([c.id for c in candidates]), ch.c.status == "waiting"
                )
            )
        }
        append_audit_many(
            conn,
            actor=actor,
            at=now,
            entries=[
                (
                    "handover.prepared",
                    "credential_handover",
                    ids[r.id],
                    {
                        "person_id": r.person_id,
                        "target": r.key,
                        "username": r.username,
                        "manager_person_id": managers.get(r.person_id),
                    },
                )
                for r in candidates
            ],
        )
    return f"handover: {len(candidates)} activation codes prepared"


def _managers(conn: Connection, person_ids: set[int], at: dt.date) -> dict[int, int]:
    """Person -> the person holding the supervisor assignment of their primary assignment."""
    wanted: dict[int, tuple[str, str]] = {}
    for person in hub.iter_people(conn, sorted(person_ids)):
        primary = person.defining_assignment(at)
        if primary is not None and primary.supervisor_assignment_number:
            wanted[person.person_id] = (primary.organisation, primary.supervisor_assignment_number)
    if not wanted:
        return {}
    a, o = s.assignment, s.organisation
    numbers = sorted({n for _, n in wanted.values()})
    holders: dict[tuple[str, str], int] = {}
    for start in range(0, len(numbers), 1000):
        for ods, number, pid in conn.execute(
            sa.select(o.c.ods_code, a.c.assignment_number, a.c.person_id)
            .select_from(a.join(o, o.c.id == a.c.organisation_id))
            .where(a.c.assignment_number.in_(numbers[start : start + 1000]))
        ):
            holders[(ods, number)] = pid
    return {pid: holders[key] for pid, key in wanted.items() if key in holders}


def credential_handovers(engine: Engine, at: dt.date, actor: str) -> str | None:
    """The scheduler pre-step (``pasa.service.scheduler.PRE_STEPS``)."""
    return prepare_handovers(engine, at, actor=actor)


# --- list, reveal, revoke ---------------------------------------------------------------------


def list_handovers(engine: Engine, *, include_closed: bool = True) -> list[HandoverRow]:
    ch, acc, t, p = s.credential_handover, s.account, s.target, s.person
    mgr = p.alias("manager")
    query = (
        sa.select(
            ch.c.id,
            p.c.first_name,
            p.c.known_as,
            p.c.last_name,
            t.c.key,
            acc.c.username,
            mgr.c.first_name.label("m_first"),
            mgr.c.known_as.label("m_known"),
            mgr.c.last_name.label("m_last"),
            ch.c.status,
            ch.c.expires_at,
        )
        .select_from(
            ch.join(acc, acc.c.id == ch.c.account_id)
            .join(t, t.c.id == acc.c.target_id)
            .join(p, p.c.id == ch.c.person_id)
            .outerjoin(mgr, mgr.c.id == ch.c.manager_person_id)
        )
        .order_by(ch.c.id)
    )
    if not include_closed:
        query = query.where(ch.c.status.in_(_OPEN))
    with engine.connect() as conn:
        return [
            HandoverRow(
                id=r.id,
                person=f"{r.known_as or r.first_name} {r.last_name}",
                target=r.key,
                username=r.username,
                manager=(f"{r.m_known or r.m_first} {r.m_last}" if r.m_last is not None else None),
                status=r.status,
                expires_at=_aware(r.expires_at),
            )
            for r in conn.execute(query)
        ]


def _load(conn: Connection, handover_id: int, *, lock: bool = True) -> Any:
    ch, acc, t = s.credential_handover, s.account, s.target
    query = (
        sa.select(ch, acc.c.username, t.c.key.label("target_key"))
        .select_from(ch.join(acc, acc.c.id == ch.c.account_id).join(t, t.c.id == acc.c.target_id))
        .where(ch.c.id == handover_id)
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=ch)
    return conn.execute(query).first()


def reveal(
    engine: Engine,
    handover_id: int,
    *,
    actor: str,
    clock: Clock,
    ttl: dt.timedelta = DEFAULT_TTL,
) -> RevealedCode:
    """Generate the one-time activation code; only its SHA-256 is stored. Shown once."""
    now = clock.now()
    with engine.begin() as conn:
        row = _load(conn, handover_id)
        if row is None:
            raise NotFoundError(f"there is no credential handover {handover_id}")
        if row.status == "revealed":
            raise HandoverError(
                f"handover {handover_id} was already revealed by {row.revealed_by} at "
                f"{_aware(row.revealed_at):%Y-%m-%d %H:%M} UTC; revoke it with "
                f"`pasa handover revoke {handover_id}` and a new one is prepared"
            )
        if row.status != "waiting":
            raise HandoverError(
                f"handover {handover_id} is {row.status}, so it cannot be revealed; "
                f"`pasa handover revoke {handover_id}` prepares a new one"
                if row.status != "redeemed"
                else f"handover {handover_id} has already been redeemed by the new starter"
            )
        code = f"{handover_id}-{secrets.token_urlsafe(32)}"
        expires_at = now + ttl
        conn.execute(
            s.credential_handover.update()
            .where(s.credential_handover.c.id == handover_id)
            .values(
                status="revealed",
                token_hash=hash_code(code),
                revealed_by=actor,
                revealed_at=now,
                expires_at=expires_at,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="handover.revealed",
            subject_type="credential_handover",
            subject_id=handover_id,
            details={
                "target": row.target_key,
                "username": row.username,
                "expires_at": expires_at.isoformat(),
            },
            at=now,
        )
    log.info("handover.revealed", handover_id=handover_id, actor=actor, target=row.target_key)
    return RevealedCode(
        handover_id=handover_id,
        code=code,
        activation_path=ACTIVATION_PATH,
        expires_at=expires_at,
        username=row.username,
        target=row.target_key,
    )


def revoke(engine: Engine, handover_id: int, *, actor: str) -> int:
    """Withdraw a handover (its code stops working) and prepare a fresh *waiting* one.

    Returns the id of the new handover (or of the open one the account already has).
    """
    now = _clock_now()
    ch = s.credential_handover
    with engine.begin() as conn:
        row = _load(conn, handover_id)
        if row is None:
            raise NotFoundError(f"there is no credential handover {handover_id}")
        if row.status == "redeemed":
            raise HandoverError(
                f"handover {handover_id} has already been redeemed; there is nothing to revoke"
            )
        if row.status != "revoked":
            conn.execute(ch.update().where(ch.c.id == handover_id).values(status="revoked"))
        open_id = conn.scalar(
            sa.select(ch.c.id).where(
                ch.c.account_id == row.account_id, ch.c.status.in_(_OPEN), ch.c.id != handover_id
            )
        )
        if open_id is None:
            open_id = conn.execute(
                ch.insert()
                .values(
                    account_id=row.account_id,
                    person_id=row.person_id,
                    status="waiting",
                    manager_person_id=row.manager_person_id,
                    created_at=now,
                )
                .returning(ch.c.id)
            ).scalar_one()
        audit.append(
            conn,
            actor=actor,
            action="handover.revoked",
            subject_type="credential_handover",
            subject_id=handover_id,
            details={
                "previous_status": row.status,
                "replacement": open_id,
                "target": row.target_key,
                "username": row.username,
            },
            at=now,
        )
    log.info("handover.revoked", handover_id=handover_id, actor=actor, replacement=open_id)
    return int(open_id)


# --- redeem ------------------------------------------------------------------------------------

_INVALID = "this activation code is not valid; check it, or ask your line manager for a new one"


def password_problems(password: str, username: str, names: list[str]) -> list[str]:
    """Why ``password`` is not acceptable (empty when it is); never repeats the password."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"it must be at least {MIN_PASSWORD_LENGTH} characters long")
    lowered = password.casefold()
    if username and username.casefold() in lowered:
        problems.append("it must not contain your username")
    parts = {
        part.casefold()
        for name in names
        if name
        for part in (name, *re.split(r"[\s\-']+", name))
        if len(part) >= 3
    }
    if any(part in lowered for part in parts):
        problems.append("it must not contain your name")
    return problems


def _scrub(text: str, *secrets_: str) -> str:
    for secret in secrets_:
        if secret:
            text = text.replace(secret, "***")
    return text


def redeem(
    engine: Engine,
    code: str,
    new_password: str,
    *,
    connectors: Mapping[str, Connector],
    clock: Clock,
) -> str:
    """Check the code, set ``new_password`` in the target, close the handover; the username."""
    code = code.strip()
    head, sep, _ = code.partition("-")
    if not sep or not head.isdigit():
        raise HandoverError(_INVALID)
    handover_id = int(head)
    now = clock.now()
    ch = s.credential_handover
    failure: str | None = None
    with engine.begin() as conn:
        row = _load(conn, handover_id)
        if row is None or row.status == "waiting" or row.token_hash is None:
            raise HandoverError(_INVALID)
        if row.status == "redeemed":
            raise HandoverError(
                "this activation code has already been used; sign in with the password you "
                "chose, or ask the service desk to reset it"
            )
        if row.status in ("revoked", "expired"):
            what = "withdrawn" if row.status == "revoked" else "expired"
            raise HandoverError(
                f"this activation code has been {what}; ask your line manager for a new one"
            )
        if not hmac.compare_digest(str(row.token_hash), hash_code(code)):
            attempts = int(row.failed_attempts) + 1
            locked = attempts >= MAX_FAILED_ATTEMPTS
            conn.execute(
                ch.update()
                .where(ch.c.id == handover_id)
                .values(failed_attempts=attempts, **({"status": "revoked"} if locked else {}))
            )
            audit.append(
                conn,
                actor="activation",
                action="handover.locked" if locked else "handover.failed_attempt",
                details={"failed_attempts": attempts},
                at=now,
                subject_type="credential_handover",
                subject_id=handover_id,
            )
            failure = (
                "this activation code is not valid, and after too many attempts it has been "
                "withdrawn; ask your line manager for a new one"
                if locked
                else _INVALID
            )
        elif (expires := _aware(row.expires_at)) is not None and now > expires:
            conn.execute(ch.update().where(ch.c.id == handover_id).values(status="expired"))
            audit.append(
                conn,
                actor="activation",
                action="handover.expired",
                details={"expires_at": str(row.expires_at)},
                at=now,
                subject_type="credential_handover",
                subject_id=handover_id,
            )
            failure = "this activation code has expired; ask your line manager for a new one"
    if failure is not None:
        log.info("handover.redeem_refused", handover_id=handover_id)
        raise HandoverError(failure)

    with engine.connect() as conn:
        person = conn.execute(
            sa.select(
                s.person.c.first_name,
                s.person.c.last_name,
                s.person.c.known_as,
                s.person.c.middle_names,
            ).where(s.person.c.id == row.person_id)
        ).one()
    names = [person.first_name, person.last_name, person.known_as or "", person.middle_names or ""]
    problems = password_problems(new_password, row.username, names)
    if problems:
        raise HandoverError("that password cannot be used: " + "; ".join(problems))

    connector = connectors.get(row.target_key)
    if connector is None:
        raise HandoverError(
            f"target '{row.target_key}' has no connector here; ask the service desk"
        )
    try:
        connector.set_password(row.username, new_password)
    except ConnectorError as exc:
        reason = _scrub(str(exc), new_password, code)
        with engine.begin() as conn:
            audit.append(
                conn,
                actor="activation",
                action="handover.set_password_failed",
                details={"target": row.target_key, "username": row.username, "error": reason},
                at=now,
                subject_type="credential_handover",
                subject_id=handover_id,
            )
        log.warning("handover.set_password_failed", handover_id=handover_id, error=reason)
        if isinstance(exc, TransientError):
            raise HandoverError(
                f"{row.target_key} could not be reached to set your password; your code still "
                "works, please try again in a few minutes"
            ) from None
        raise HandoverError(
            f"{row.target_key} refused to set the password ({reason}); ask the service desk"
        ) from None

    with engine.begin() as conn:
        conn.execute(
            ch.update()
            .where(ch.c.id == handover_id, ch.c.status == "revealed")
            .values(status="redeemed", redeemed_at=now)
        )
        audit.append(
            conn,
            actor="activation",
            action="handover.redeemed",
            subject_type="credential_handover",
            subject_id=handover_id,
            details={"target": row.target_key, "username": row.username},
            at=now,
        )
    log.info("handover.redeemed", handover_id=handover_id, target=row.target_key)
    return str(row.username)
