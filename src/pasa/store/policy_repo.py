"""Store the access policy (loaded from YAML) in the database, versioned and audited.

The document is kept whole (``policy_version.document``) so evaluation always uses exactly
what was approved, and normalised into ``target``, ``role`` and ``rule`` rows so the API and
reports can query them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pasa.audit import log as audit
from pasa.clock import now as _clock_now
from pasa.domain.errors import ConfigurationError
from pasa.policy.document import PolicyDocument
from pasa.store import schema as s


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    version_id: int
    sha256: str
    changed: bool
    targets: int
    roles: int
    rules: int


def _upsert(conn: Connection, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    existing = {r[0]: r[1] for r in conn.execute(sa.select(table.c.key, table.c.id))}
    for row in rows:
        if row["key"] in existing:
            conn.execute(table.update().where(table.c.id == existing[row["key"]]).values(**row))
        else:
            conn.execute(table.insert().values(**row))
    gone = set(existing) - {r["key"] for r in rows}
    if gone and table is not s.target:
        conn.execute(table.delete().where(table.c.key.in_(gone)))


def save_policy(conn: Connection, doc: PolicyDocument, *, source: str, actor: str) -> StoredPolicy:
    """Make ``doc`` the active policy (in the caller's transaction). Idempotent by content."""
    document = doc.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    active = conn.execute(
        sa.select(s.policy_version.c.id, s.policy_version.c.sha256).where(
            s.policy_version.c.active.is_(True)
        )
    ).first()
    counts = (len(doc.targets), len(doc.roles), len(doc.rules))
    if active is not None and active.sha256 == digest:
        return StoredPolicy(active.id, digest, False, *counts)

    # Targets are never deleted by a policy change: accounts still exist in them and must be
    # disabled by the planner first. A target dropped from the policy stays, unreferenced.
    _upsert(
        conn,
        s.target,
        "key",
        [
            {
                "key": t.key,
                "name": t.name,
                "connector": t.connector,
                "settings": t.settings,
                "username_template": t.username_template,
            }
            for t in doc.targets
        ],
    )
    _upsert(
        conn,
        s.role,
        "key",
        [
            {
                "key": r["key"],
                "description": r.get("description", ""),
                "entitlements": r.get("entitlements", []),
            }
            for r in document["roles"]
        ],
    )
    _upsert(
        conn,
        s.rule,
        "key",
        [
            {
                "key": r["key"],
                "description": r.get("description", ""),
                "predicate": r.get("when", {}),
                "roles": r.get("grant", []),
            }
            for r in document["rules"]
        ],
    )
    conn.execute(s.policy_version.update().values(active=False))
    version_id = conn.execute(
        s.policy_version.insert()
        .values(
            sha256=digest,
            source=source,
            document=document,
            loaded_at=_clock_now(),
            loaded_by=actor,
            active=True,
        )
        .returning(s.policy_version.c.id)
    ).scalar_one()
    audit.append(
        conn,
        actor=actor,
        action="policy.load",
        subject_type="policy_version",
        subject_id=version_id,
        details={
            "source": source,
            "sha256": digest,
            "previous": active.id if active is not None else None,
            "targets": counts[0],
            "roles": counts[1],
            "rules": counts[2],
        },
    )
    return StoredPolicy(version_id, digest, True, *counts)


def load_active_policy(conn: Connection) -> PolicyDocument:
    row = conn.execute(
        sa.select(s.policy_version.c.document).where(s.policy_version.c.active.is_(True))
    ).first()
    if row is None:
        raise ConfigurationError(
            "no access policy is loaded; run `pasa policy load examples/policy.yaml` first"
        )
    return PolicyDocument.model_validate(row.document)
