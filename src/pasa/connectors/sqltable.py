"""A generic connector for an application's own user table, at any SQLAlchemy URL.

Many clinical applications keep their users in a table of their own database. This
connector maintains two tables there:

``users`` (name configurable)
    ``username`` (primary key), ``external_id``, ``enabled``, and one column per account
    attribute (``first_name`` ... ``manager_employee_number``) — or, with
    ``attributes_column`` set, a single JSON column holding them all.
``user_memberships`` (name configurable)
    ``(username, kind, value)``, unique.

Passwords (``set_password``, day-one credential handover) go to a ``password_hash`` column
(mappable like the others) when the application's table has one, as
``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` (the Django/passlib format); PASA never
adds that column itself.

Column names can be mapped to the application's own (``columns={"username": "login"}``).
Each call runs in its own short transaction. Database errors are mapped onto the connector
contract: a refused or locked connection is a :class:`TransientError`; anything else the
database rejects is a :class:`PermanentError` with the database's sentence.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pasa.connectors.base import (
    ALL_CAPABILITIES,
    Attributes,
    Capability,
    ConflictError,
    Connector,
    NotFoundError,
    PermanentError,
    RemoteAccount,
    TransientError,
    check_owner,
)
from pasa.domain.grants import ACCOUNT_ATTRIBUTE_NAMES
from pasa.store.db import make_engine, normalise_url

ATTRIBUTE_NAMES = ACCOUNT_ATTRIBUTE_NAMES
_FIXED = ("username", "external_id", "enabled")


@dataclass(frozen=True, slots=True)
class SqlTableSettings:
    url: str
    table: str = "users"
    membership_table: str = "user_memberships"
    # Logical name (username, external_id, enabled, an attribute, or kind/value) -> column.
    columns: Mapping[str, str] = field(default_factory=dict)
    # Store all attributes in one JSON column of this name instead of one column each.
    attributes_column: str | None = None
    create_tables: bool = True


def _engine_for(url: str) -> Engine:
    backend = sa.engine.make_url(normalise_url(url)).get_backend_name()
    if backend in ("sqlite", "postgresql"):
        return make_engine(url)
    return sa.create_engine(url, pool_pre_ping=True)


class SqlTableConnector(Connector):
    capabilities = ALL_CAPABILITIES | {Capability.SET_PASSWORD}

    def __init__(self, settings: SqlTableSettings, *, name: str = "sql_table") -> None:
        self.settings = settings
        self.name = name
        self._col = {n: settings.columns.get(n, n) for n in (*_FIXED, *ATTRIBUTE_NAMES)}
        self._mcol = {n: settings.columns.get(n, n) for n in ("kind", "value")}
        md = sa.MetaData()
        user_columns: list[sa.Column[Any]] = [
            sa.Column(self._col["username"], sa.String(200), primary_key=True),
            sa.Column(self._col["external_id"], sa.String(200), nullable=False, unique=True),
            sa.Column(self._col["enabled"], sa.Boolean, nullable=False),
        ]
        if settings.attributes_column:
            user_columns.append(sa.Column(settings.attributes_column, sa.JSON, nullable=False))
        else:
            user_columns += [
                sa.Column(self._col[a], sa.String(254), nullable=True) for a in ATTRIBUTE_NAMES
            ]
        self.users = sa.Table(settings.table, md, *user_columns)
        self.memberships = sa.Table(
            settings.membership_table,
            md,
            sa.Column(self._col["username"], sa.String(200), nullable=False),
            sa.Column(self._mcol["kind"], sa.String(40), nullable=False),
            sa.Column(self._mcol["value"], sa.String(200), nullable=False),
            sa.UniqueConstraint(self._col["username"], self._mcol["kind"], self._mcol["value"]),
        )
        self.engine = _engine_for(settings.url)
        self._tables_ready = not settings.create_tables

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One short transaction, with database errors mapped onto the contract."""
        try:
            if not self._tables_ready:
                self._create_tables()
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise TransientError(f"{self.name} database unavailable: {_first_line(exc)}") from exc
        except sa.exc.InterfaceError as exc:
            raise TransientError(
                f"{self.name} database connection lost: {_first_line(exc)}"
            ) from exc
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise TransientError(
                    f"{self.name} database connection lost: {_first_line(exc)}"
                ) from exc
            raise PermanentError(f"{self.name} database refused: {_first_line(exc)}") from exc

    def _create_tables(self) -> None:
        for attempt in range(3):
            try:
                self.users.metadata.create_all(self.engine, checkfirst=True)
                break
            except (
                sa.exc.IntegrityError,
                sa.exc.ProgrammingError,
                sa.exc.OperationalError,
            ) as exc:
                # Another worker created them at the same moment: PostgreSQL reports the race
                # as a duplicate type or relation, SQLite as "already exists". Look again;
                # never let it pass for a refusal of the operation in hand.
                if attempt == 2:
                    raise TransientError(
                        f"{self.name}: could not create its tables: {_first_line(exc)}"
                    ) from exc
        self._tables_ready = True

    def _u(self, name: str) -> sa.ColumnElement[Any]:
        return self.users.c[self._col[name]]

    def _m(self, name: str) -> sa.ColumnElement[Any]:
        col = self._col["username"] if name == "username" else self._mcol[name]
        return self.memberships.c[col]

    def _attribute_values(self, attributes: Attributes) -> dict[str, Any]:
        if self.settings.attributes_column:
            return {self.settings.attributes_column: dict(attributes)}
        unknown = sorted(set(attributes) - set(ATTRIBUTE_NAMES))
        if unknown:
            raise PermanentError(f"{self.name} has no column for attribute(s) {', '.join(unknown)}")
        return {self._col[k]: v for k, v in attributes.items()}

    def _row_attributes(self, row: sa.Row[Any]) -> dict[str, Any]:
        mapping = row._mapping
        if self.settings.attributes_column:
            return dict(mapping[self.settings.attributes_column] or {})
        return {a: mapping[self._col[a]] for a in ATTRIBUTE_NAMES}

    def _fetch(self, conn: Connection, username: str) -> sa.Row[Any] | None:
        return conn.execute(sa.select(self.users).where(self._u("username") == username)).first()

    def _require(self, conn: Connection, username: str) -> sa.Row[Any]:
        row = self._fetch(conn, username)
        if row is None:
            raise NotFoundError(f"account '{username}' does not exist in {self.name}")
        return row

    def _memberships_of(self, conn: Connection, usernames: Any) -> dict[str, set[tuple[str, str]]]:
        rows = conn.execute(
            sa.select(self._m("username"), self._m("kind"), self._m("value")).where(
                self._m("username").in_(usernames)
            )
        )
        out: dict[str, set[tuple[str, str]]] = {}
        for u, k, v in rows:
            out.setdefault(u, set()).add((k, v))
        return out

    def _remote(self, row: sa.Row[Any], memberships: set[tuple[str, str]]) -> RemoteAccount:
        m = row._mapping
        return RemoteAccount(
            username=m[self._col["username"]],
            external_id=m[self._col["external_id"]],
            enabled=bool(m[self._col["enabled"]]),
            attributes=self._row_attributes(row),
            memberships=frozenset(memberships),
        )

    # -- protocol --------------------------------------------------------------------------

    def create(self, username: str, attributes: Attributes) -> str:
        values = self._attribute_values(attributes)
        try:
            with self._tx() as conn:
                existing = self._fetch(conn, username)
                if existing is None:
                    external_id = str(uuid.uuid4())
                    conn.execute(
                        self.users.insert().values(
                            {
                                self._col["username"]: username,
                                self._col["external_id"]: external_id,
                                self._col["enabled"]: True,
                                **values,
                            }
                        )
                    )
                    return external_id
        except PermanentError as exc:
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            # Someone created the username between our read and insert: decide below.
        with self._tx() as conn:
            row = self._require(conn, username)
            check_owner(username, self._row_attributes(row), attributes)
            if values:
                conn.execute(
                    self.users.update().where(self._u("username") == username).values(values)
                )
            return str(row._mapping[self._col["external_id"]])

    def update(self, username: str, changes: Attributes) -> None:
        with self._tx() as conn:
            row = self._require(conn, username)
            if self.settings.attributes_column:
                merged = {**self._row_attributes(row), **changes}
                values = self._attribute_values(merged)
            else:
                values = self._attribute_values(changes)
            if values:
                conn.execute(
                    self.users.update().where(self._u("username") == username).values(values)
                )

    def rename(self, username: str, new_username: str) -> None:
        with self._tx() as conn:
            old = self._fetch(conn, username)
            new = self._fetch(conn, new_username)
            if old is None and new is not None:
                return  # repeat of a rename that already happened
            if old is None:
                raise NotFoundError(f"account '{username}' does not exist in {self.name}")
            if username == new_username:
                return
            if new is not None:
                raise ConflictError(f"username '{new_username}' already exists in {self.name}")
            conn.execute(
                self.users.update()
                .where(self._u("username") == username)
                .values({self._col["username"]: new_username})
            )
            conn.execute(
                self.memberships.update()
                .where(self._m("username") == username)
                .values({self._col["username"]: new_username})
            )

    def _set_enabled(self, username: str, enabled: bool) -> None:
        with self._tx() as conn:
            self._require(conn, username)
            conn.execute(
                self.users.update()
                .where(self._u("username") == username)
                .values({self._col["enabled"]: enabled})
            )

    def enable(self, username: str) -> None:
        self._set_enabled(username, True)

    def disable(self, username: str) -> None:
        self._set_enabled(username, False)

    def delete(self, username: str) -> None:
        with self._tx() as conn:
            conn.execute(self.memberships.delete().where(self._m("username") == username))
            conn.execute(self.users.delete().where(self._u("username") == username))

    def add_member(self, username: str, kind: str, value: str, **_: object) -> None:
        where = sa.and_(
            self._m("username") == username, self._m("kind") == kind, self._m("value") == value
        )
        try:
            with self._tx() as conn:
                self._require(conn, username)
                if conn.execute(sa.select(sa.literal(1)).where(where)).first() is None:
                    conn.execute(
                        self.memberships.insert().values(
                            {
                                self._col["username"]: username,
                                self._mcol["kind"]: kind,
                                self._mcol["value"]: value,
                            }
                        )
                    )
        except PermanentError as exc:
            # A concurrent add of the same membership: the goal is met.
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            with self._tx() as conn:
                if conn.execute(sa.select(sa.literal(1)).where(where)).first() is None:
                    raise

    def remove_member(self, username: str, kind: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(
                self.memberships.delete().where(
                    self._m("username") == username,
                    self._m("kind") == kind,
                    self._m("value") == value,
                )
            )

    def read(self, username: str) -> RemoteAccount | None:
        with self._tx() as conn:
            row = self._fetch(conn, username)
            if row is None:
                return None
            return self._remote(row, self._memberships_of(conn, [username]).get(username, set()))

    def list(self) -> Iterator[RemoteAccount]:
        page = 1000
        after: str | None = None
        while True:
            with self._tx() as conn:
                query = sa.select(self.users).order_by(self._u("username")).limit(page)
                if after is not None:
                    query = query.where(self._u("username") > after)
                rows = conn.execute(query).all()
                if not rows:
                    return
                names = [r._mapping[self._col["username"]] for r in rows]
                members = self._memberships_of(conn, names)
            for row, name in zip(rows, names, strict=True):
                yield self._remote(row, members.get(name, set()))
            after = names[-1]

    def set_password(self, username: str, password: str) -> None:
        column = self.settings.columns.get("password_hash", "password_hash")
        with self._tx() as conn:
            present = {c["name"] for c in sa.inspect(conn).get_columns(self.settings.table)}
            if column not in present:
                raise PermanentError(
                    f"{self.name}: table {self.settings.table} has no {column} column, so PASA "
                    f"cannot set passwords there; add one (ALTER TABLE {self.settings.table} "
                    f"ADD COLUMN {column} VARCHAR(255)) or map an existing column with "
                    "columns: {password_hash: <column>}"
                )
            self._require(conn, username)
            table = sa.table(
                self.settings.table, sa.column(self._col["username"]), sa.column(column)
            )
            conn.execute(
                table.update()
                .where(table.c[self._col["username"]] == username)
                .values({column: pbkdf2_hash(password)})
            )

    def close(self) -> None:
        self.engine.dispose()


PBKDF2_ITERATIONS = 600_000


def pbkdf2_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$iterations$salt$base64(hash)``, as Django and passlib store it."""
    salt = secrets.token_urlsafe(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode('ascii')}"


def pbkdf2_verify(password: str, stored: str) -> bool:
    algorithm, iterations, salt, encoded = stored.split("$", 3)
    if algorithm != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), int(iterations))
    return secrets.compare_digest(base64.b64encode(digest).decode("ascii"), encoded)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
