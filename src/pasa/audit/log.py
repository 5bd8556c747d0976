"""Append-only, hash-chained audit log.

Each entry's hash is ``sha256(prev_hash || canonical_json(entry))``; the first entry chains
from 64 zeros. Editing any field breaks that entry's hash; deleting or reordering breaks the
``prev_hash`` link or the ``seq`` run. Database triggers refuse UPDATE and DELETE, so tampering
needs DBA rights — and is still detected by :func:`verify`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pasa.clock import now as _clock_now
from pasa.store.schema import audit_log

GENESIS = "0" * 64
_LOCK_KEY = 0x5A5A_A0D1  # pg_advisory_xact_lock key serialising appends on PostgreSQL


def _canonical(
    seq: int, at: str, actor: str, action: str, subject_type: str, subject_id: str, details: Any
) -> bytes:
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "details": details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(prev_hash: str, payload: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry to append (see :func:`append_many`)."""

    actor: str
    action: str
    subject_type: str
    subject_id: str | int
    details: dict[str, Any] | None = None
    at: dt.datetime | None = None


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Append one entry in the caller's transaction and return its sequence number.

    Call it in the same transaction as the change it records, so both commit or neither.
    """
    return append_many(conn, [Entry(actor, action, subject_type, subject_id, details, at)])[0]


def append_many(conn: Connection, entries: Sequence[Entry]) -> list[int]:
    """Append ``entries``, in order, in the caller's transaction; return their sequence numbers.

    The chain is computed here, in Python, from the newest entry read once under the append
    lock (PostgreSQL: an advisory transaction lock, held to the end of the caller's
    transaction; SQLite has one writer), and written by one multi-row INSERT: appending a
    batch costs about as much as appending one entry. The entries are exactly those
    :func:`append` would write one after another.
    """
    if not entries:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    last = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq = 0 if last is None else int(last.seq)
    prev = GENESIS if last is None else str(last.hash)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        when = (entry.at or _clock_now()).astimezone(dt.UTC)
        # Round-trip details through JSON so what is hashed is exactly what is stored and
        # re-read.
        body = json.loads(json.dumps(entry.details or {}, default=str))
        subject_id = str(entry.subject_id)
        digest = chain_hash(
            prev,
            _canonical(
                seq,
                _timestamp(when),
                entry.actor,
                entry.action,
                entry.subject_type,
                subject_id,
                body,
            ),
        )
        rows.append(
            {
                "seq": seq,
                "at": when,
                "actor": entry.actor,
                "action": entry.action,
                "subject_type": entry.subject_type,
                "subject_id": subject_id,
                "details": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    if len(rows) == 1:
        conn.execute(audit_log.insert(), rows[0])
    else:
        # executemany of an INSERT ... RETURNING: SQLAlchemy's "insertmanyvalues" sends it as
        # one multi-row INSERT (per 1,000 rows) on SQLite and PostgreSQL alike.
        conn.execute(
            audit_log.insert().returning(audit_log.c.seq, sort_by_parameter_order=True), rows
        ).all()
    return [int(r["seq"]) for r in rows]


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    seq: int
    problem: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int
    head: str
    problems: tuple[VerifyProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(conn: Connection) -> Iterator[Any]:
    result = conn.execute(
        sa.select(audit_log).order_by(audit_log.c.seq).execution_options(yield_per=5000)
    )
    yield from result


def verify(conn: Connection, *, max_problems: int = 50) -> VerifyResult:
    """Recompute the whole chain; report every edited, deleted or reordered entry."""
    problems: list[VerifyProblem] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in _rows(conn):
        count += 1
        if row.seq != expected_seq:
            problems.append(
                VerifyProblem(
                    row.seq,
                    f"sequence gap: expected entry {expected_seq}, found {row.seq} "
                    "(entries deleted)",
                )
            )
        if row.prev_hash != prev:
            problems.append(
                VerifyProblem(
                    row.seq,
                    "link broken: prev_hash does not match the preceding entry "
                    "(entry deleted, inserted or reordered)",
                )
            )
        recomputed = chain_hash(
            row.prev_hash,
            _canonical(
                row.seq,
                _timestamp(row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)),
                row.actor,
                row.action,
                row.subject_type,
                row.subject_id,
                row.details,
            ),
        )
        if recomputed != row.hash:
            problems.append(VerifyProblem(row.seq, "content edited: hash does not match entry"))
        prev = row.hash
        expected_seq = row.seq + 1
        if len(problems) >= max_problems:
            break
    return VerifyResult(entries=count, head=prev, problems=tuple(problems))
