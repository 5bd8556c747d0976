"""The audit log is append-only and `verify` detects any edit, deletion or reordering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.store.schema import audit_log


def _write(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for i in range(n):
            audit.append(
                conn,
                actor="tester",
                action="thing.changed",
                subject_type="thing",
                subject_id=i,
                details={"n": i, "name": f"Siân O'Brien {i}", "nested": {"a": [1, 2]}},
            )


def _tamper(engine: Engine, statement: sa.Executable) -> None:
    """Simulate someone with DBA rights bypassing the append-only triggers."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        conn.execute(statement)


def test_intact_log_verifies(engine: Engine) -> None:
    _write(engine, 25)
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert result.ok
    assert result.entries == 25
    assert len(result.head) == 64


def test_empty_log_verifies(engine: Engine) -> None:
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert result.ok and result.entries == 0


def test_update_and_delete_are_refused(engine: Engine) -> None:
    _write(engine, 3)
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="mallory"))
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 2))
    with engine.connect() as conn:
        assert audit.verify(conn).ok


def test_edited_entry_is_detected(engine: Engine) -> None:
    _write(engine, 10)
    _tamper(engine, audit_log.update().where(audit_log.c.seq == 4).values(details={"n": 999}))
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok
    assert [(p.seq, "edited" in p.problem) for p in result.problems] == [(4, True)]


def test_deleted_entry_is_detected(engine: Engine) -> None:
    _write(engine, 10)
    _tamper(engine, audit_log.delete().where(audit_log.c.seq == 6))
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok
    assert result.problems[0].seq == 7
    assert "deleted" in result.problems[0].problem


def test_reordered_entries_are_detected(engine: Engine) -> None:
    _write(engine, 10)
    with engine.connect() as conn:
        rows = {r.seq: r for r in conn.execute(sa.select(audit_log))}
    # Swap the content of entries 3 and 5 while keeping their sequence numbers.
    for seq, other in ((3, 5), (5, 3)):
        src = rows[other]
        _tamper(
            engine,
            audit_log.update()
            .where(audit_log.c.seq == seq)
            .values(
                at=src.at,
                actor=src.actor,
                action=src.action,
                subject_type=src.subject_type,
                subject_id=src.subject_id,
                details=src.details,
                prev_hash=src.prev_hash,
                hash=src.hash,
            ),
        )
    with engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok
    assert {p.seq for p in result.problems} >= {3}


def test_rewritten_chain_tail_is_detected_by_head(engine: Engine) -> None:
    """Deleting the newest entry leaves a valid chain: the head hash is what changes."""
    _write(engine, 5)
    with engine.connect() as conn:
        head_before = audit.verify(conn).head
    _tamper(engine, audit_log.delete().where(audit_log.c.seq == 5))
    with engine.connect() as conn:
        after = audit.verify(conn)
    assert after.entries == 4
    assert after.head != head_before
