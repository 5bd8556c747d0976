"""The policy editor's service: the active policy as YAML text, what-if from edited text, saving
a previewed text as a new version (optimistic concurrency), and version history with diffs.

A what-if here is :func:`pasa.service.provisioning.what_if` with the edited document: the same
evaluation and planner as the real run, with nothing written. Saving goes through
:func:`pasa.store.policy_repo.save_policy`, which versions and audits the change.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.domain.errors import ConfigurationError, PasaError
from pasa.domain.operations import OperationKind
from pasa.policy.document import PolicyDocument, parse_policy
from pasa.service import provisioning
from pasa.store import schema as s
from pasa.store.policy_repo import save_policy

SOURCE = "web policy editor"
MAX_POLICY_CHARS = 500_000  # far above any real policy; refuses a pasted extract


class StalePreview(PasaError):
    """The text to save is not the text that was previewed, or the policy changed since."""


@dataclass(frozen=True, slots=True)
class Version:
    id: int
    sha256: str
    source: str
    loaded_at: dt.datetime
    loaded_by: str
    active: bool


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    version: Version
    text: str


@dataclass(frozen=True, slots=True)
class Change:
    """One person's gains or losses in one target, e.g. ``("ad", "group GG-X")``."""

    person_id: int
    name: str
    gains: tuple[tuple[str, str], ...]
    losses: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PolicyPreview:
    """Either ``errors`` (the text is not a valid policy) or the what-if of saving it."""

    text: str
    sha256: str
    at: dt.date
    errors: tuple[str, ...] = ()
    operations: int = 0
    by_target: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()
    unchanged: bool = False  # the text is the active policy

    @property
    def valid(self) -> bool:
        return not self.errors


def digest(text: str) -> str:
    """The SHA-256 of the text as previewed (line endings as a browser sends them, CRLF)."""
    # surrogatepass: any str hashes (a lone surrogate cannot come from a browser, but may
    # from a script).
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()


def normalise(text: str) -> str:
    # Browsers send textarea lines with CRLF; the stored policy and the diff use LF.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def as_yaml(document: Mapping[str, Any]) -> str:
    """The document as YAML in the model's field order (PostgreSQL's JSONB keeps its own)."""
    try:
        ordered = PolicyDocument.model_validate(dict(document)).model_dump(mode="json")
    except ValidationError:  # a version stored under an older schema: shown as it is
        ordered = dict(document)
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100)


def _version(row: Any) -> Version:
    return Version(row.id, row.sha256, row.source, row.loaded_at, row.loaded_by, row.active)


def active(engine: Engine) -> ActivePolicy | None:
    pv = s.policy_version
    with engine.connect() as conn:
        row = conn.execute(sa.select(pv).where(pv.c.active.is_(True))).first()
    if row is None:
        return None
    return ActivePolicy(_version(row), as_yaml(row.document))


def versions(engine: Engine) -> list[Version]:
    """Every version, newest first."""
    pv = s.policy_version
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                pv.c.id, pv.c.sha256, pv.c.source, pv.c.loaded_at, pv.c.loaded_by, pv.c.active
            ).order_by(pv.c.id.desc())
        ).all()
    return [_version(r) for r in rows]


@dataclass(frozen=True, slots=True)
class VersionDiff:
    version: Version
    previous: Version | None
    lines: tuple[str, ...]  # a unified diff (empty: the first version, or identical)


def version_diff(engine: Engine, version_id: int) -> VersionDiff | None:
    """A version against the one before it, as a unified diff of their YAML."""
    pv = s.policy_version
    with engine.connect() as conn:
        row = conn.execute(sa.select(pv).where(pv.c.id == version_id)).first()
        if row is None:
            return None
        prev = conn.execute(
            sa.select(pv).where(pv.c.id < version_id).order_by(pv.c.id.desc()).limit(1)
        ).first()
    new = as_yaml(row.document).splitlines()
    old = as_yaml(prev.document).splitlines() if prev is not None else []
    lines = tuple(
        difflib.unified_diff(
            old,
            new,
            fromfile=f"version {prev.id}" if prev is not None else "(none)",
            tofile=f"version {row.id}",
            lineterm="",
        )
    )
    return VersionDiff(_version(row), _version(prev) if prev is not None else None, lines)


# --- validation with places --------------------------------------------------------------


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line (1-based) of the YAML node at a pydantic error location, as far as it goes."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for item in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == item), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int):
            child = node.value[item] if 0 <= item < len(node.value) else None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for item in loc:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out


def validate(text: str) -> tuple[PolicyDocument | None, tuple[str, ...]]:
    """The document, or every problem with its line and field path."""
    if len(text) > MAX_POLICY_CHARS:
        return None, (f"the policy is {len(text):,} characters; at most {MAX_POLICY_CHARS:,}",)
    try:
        return parse_policy(text, "policy"), ()
    except ConfigurationError as exc:
        first = str(exc)
    # The first problem in the repository's own words (it names rules by key), then each
    # of pydantic's with the line it is on.
    errors = [first]
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
        PolicyDocument.model_validate(data)
    except (yaml.YAMLError, ValidationError, ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            for error in exc.errors()[1:]:
                loc = tuple(error["loc"])
                line = _line_of(root, loc)
                where = f"line {line}: " if line is not None else ""
                errors.append(f"{where}{_path(loc) or 'document'}: {error['msg']}")
        if isinstance(exc, ValidationError) and exc.errors():
            loc = tuple(exc.errors()[0]["loc"])
            line = _line_of(root, loc)
            if line is not None:
                errors[0] = f"line {line}: {first.removeprefix('policy: ')}"
    return None, tuple(errors)


_GAIN_KINDS = {OperationKind.CREATE_ACCOUNT, OperationKind.ENABLE, OperationKind.ADD_MEMBERSHIP}


def preview(engine: Engine, text: str, at: dt.date) -> PolicyPreview:
    """What saving ``text`` would do at ``at`` (nothing is written)."""
    text = normalise(text)
    sha = digest(text)
    document, errors = validate(text)
    if document is None:
        return PolicyPreview(text, sha, at, errors=errors)
    result = provisioning.what_if(engine, at, policy=document)
    by_target: dict[str, dict[str, int]] = {}
    for (target, kind), n in sorted(result.counts_by_target_kind().items()):
        by_target.setdefault(target, {})[kind.value] = n
    changes = tuple(
        Change(
            person_id=pid,
            name=result.people[pid].display_name if pid in result.people else f"person {pid}",
            gains=tuple(result.gains.get(pid, ())),
            losses=tuple(result.losses.get(pid, ())),
        )
        for pid in sorted(
            set(result.gains) | set(result.losses),
            key=lambda p: (
                result.people[p].display_name if p in result.people else "",
                p,
            ),
        )
    )
    current = active(engine)
    unchanged = current is not None and _same(current, document)
    return PolicyPreview(
        text,
        sha,
        at,
        operations=len(result.operations),
        by_target=by_target,
        changes=changes,
        unchanged=unchanged,
    )


def _same(current: ActivePolicy, document: PolicyDocument) -> bool:
    new = document.model_dump(mode="json")
    return as_yaml(new) == current.text


def save(engine: Engine, text: str, *, previewed: str, based_on: int, actor: str) -> int:
    """Save ``text`` as the new active version, only if it is the text that was previewed
    (``previewed`` is its SHA-256) and the active version is still ``based_on``."""
    text = normalise(text)
    if digest(text) != previewed:
        raise StalePreview(
            "this is not the text that was previewed: preview the changes again before saving"
        )
    document, errors = validate(text)
    if document is None:
        raise ConfigurationError(errors[0])
    pv = s.policy_version
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One editor saves at a time, so the check below holds until the commit.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7306)"))
        current = conn.execute(sa.select(pv.c.id, pv.c.loaded_by).where(pv.c.active)).first()
        if current is not None and current.id != based_on:
            raise StalePreview(
                f"the policy was changed by {current.loaded_by} (version {current.id}) after "
                f"your preview of version {based_on}: nothing was saved; preview your changes "
                "against the new version"
            )
        stored = save_policy(conn, document, source=SOURCE, actor=actor)
        if stored.changed:
            # Beside save_policy's own entry: that this text was the one previewed.
            audit.append(
                conn,
                actor=actor,
                action="policy.edit",
                subject_type="policy_version",
                subject_id=stored.version_id,
                details={"previewed_sha256": previewed, "based_on": based_on, "via": SOURCE},
            )
    if not stored.changed:
        raise PasaError("the text is the same policy as the active version: nothing to save")
    return stored.version_id
