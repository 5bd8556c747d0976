"""Build a connector from a target's configuration (``target.connector`` + ``settings``).

A new connector kind is one module with a ``Connector`` subclass plus one
:func:`register` call (see ``docs/connectors.md``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pasa.connectors.base import Connector, reject_unknown_settings
from pasa.connectors.csvfile import build_csv_file
from pasa.connectors.doors import build_doors
from pasa.connectors.ldap import build_ldap
from pasa.connectors.manual import DEFAULT_ASSIGNEE, DEFAULT_SLA_HOURS, ManualConnector
from pasa.connectors.memory import MemoryConnector
from pasa.connectors.scim import build_scim
from pasa.connectors.sqltable import SqlTableConnector, SqlTableSettings
from pasa.connectors.webhook import build_webhook
from pasa.domain.errors import ConfigurationError

Factory = Callable[[str, Mapping[str, Any]], Connector]

_FACTORIES: dict[str, Factory] = {}


def register(kind: str, factory: Factory) -> None:
    """Make ``kind`` usable as a target's ``connector`` value."""
    _FACTORIES[kind] = factory


def kinds() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


# Target settings PASA itself reads (not the connector): stripped before the factory sees them.
# ``rate_per_minute``: the worker never sends more operations than this to the target per
# minute (see :func:`rate_per_minute` and ``docs/operations.md``). ``concurrency``: how many
# drain jobs may work the target at once (see :func:`concurrency` and ``pasa.engine.tasks``).
# ``reconcile`` / ``reconcile_every_hours``: reconciliation policy and schedule (see
# :func:`reconcile_every_hours` and ``pasa.service.reconcile_schedule``).
PLATFORM_SETTINGS: frozenset[str] = frozenset(
    {"reconcile", "reconcile_every_hours", "rate_per_minute", "concurrency"}
)

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64


def concurrency(target_key: str, settings: Mapping[str, Any]) -> int:
    """A target's ``concurrency`` setting (default :data:`DEFAULT_CONCURRENCY`), checked."""
    value = settings.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigurationError(
            f"target '{target_key}': concurrency must be a whole number of parallel jobs"
        )
    try:
        count = int(value)
    except ValueError:
        raise ConfigurationError(
            f"target '{target_key}': concurrency must be a whole number of parallel jobs, "
            f"not '{value}'"
        ) from None
    if not 1 <= count <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"target '{target_key}': concurrency must be between 1 and {MAX_CONCURRENCY}"
        )
    return count


def rate_per_minute(target_key: str, settings: Mapping[str, Any]) -> float | None:
    """A target's ``rate_per_minute`` pacing setting (``None``: unpaced), checked."""
    value = settings.get("rate_per_minute")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(
            f"target '{target_key}': rate_per_minute must be a number of operations per minute"
        )
    try:
        rate = float(value)
    except ValueError:
        raise ConfigurationError(
            f"target '{target_key}': rate_per_minute must be a number of operations per "
            f"minute, not '{value}'"
        ) from None
    if not rate > 0 or rate == float("inf"):
        raise ConfigurationError(f"target '{target_key}': rate_per_minute must be more than zero")
    return rate


MAX_RECONCILE_EVERY_HOURS = 24 * 366  # a year


def reconcile_every_hours(target_key: str, settings: Mapping[str, Any]) -> float | None:
    """A target's ``reconcile_every_hours`` setting (``None``: never scheduled), checked."""
    value = settings.get("reconcile_every_hours")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigurationError(
            f"target '{target_key}': reconcile_every_hours must be a number of hours"
        )
    try:
        hours = float(value)
    except ValueError:
        raise ConfigurationError(
            f"target '{target_key}': reconcile_every_hours must be a number of hours, not '{value}'"
        ) from None
    if not 0 < hours <= MAX_RECONCILE_EVERY_HOURS:
        raise ConfigurationError(
            f"target '{target_key}': reconcile_every_hours must be more than zero and at most "
            f"{MAX_RECONCILE_EVERY_HOURS:,} (a year), not '{value}'"
        )
    return hours


def connector_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A target's settings as its connector sees them (without PASA's own settings)."""
    return {k: v for k, v in settings.items() if k not in PLATFORM_SETTINGS}


def build_connector(target_key: str, connector_kind: str, settings: Mapping[str, Any]) -> Connector:
    rate_per_minute(target_key, settings)  # a bad pacing setting fails at start-up too
    concurrency(target_key, settings)
    reconcile_every_hours(target_key, settings)
    settings = connector_settings(settings)
    factory = _FACTORIES.get(connector_kind)
    if factory is None:
        raise ConfigurationError(
            f"target '{target_key}' uses connector '{connector_kind}', which PASA does not "
            f"know; use one of: {', '.join(kinds())}"
        )
    return factory(target_key, settings)


def _sql_table(target_key: str, settings: Mapping[str, Any]) -> Connector:
    allowed = {
        "url",
        "url_env",
        "table",
        "membership_table",
        "columns",
        "attributes_column",
        "create_tables",
    }
    reject_unknown_settings(target_key, settings, allowed)
    url = settings.get("url")
    env = settings.get("url_env")
    if env:
        # Database URLs can hold passwords: targets name an environment variable instead.
        url = os.environ.get(str(env))
        if not url:
            raise ConfigurationError(
                f"target '{target_key}' reads its database URL from environment variable "
                f"{env}, which is not set"
            )
    if not url or not isinstance(url, str):
        raise ConfigurationError(
            f"target '{target_key}' (sql_table) needs a 'url' or 'url_env' setting"
        )
    columns = settings.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise ConfigurationError(f"target '{target_key}': 'columns' must be a mapping")
    return SqlTableConnector(
        SqlTableSettings(
            url=url,
            table=str(settings.get("table", "users")),
            membership_table=str(settings.get("membership_table", "user_memberships")),
            columns={str(k): str(v) for k, v in columns.items()},
            attributes_column=settings.get("attributes_column"),
            create_tables=bool(settings.get("create_tables", True)),
        ),
        name=target_key,
    )


def _memory(target_key: str, settings: Mapping[str, Any]) -> Connector:
    return MemoryConnector(target_key)


def _manual(target_key: str, settings: Mapping[str, Any]) -> Connector:
    reject_unknown_settings(target_key, settings, {"assignee", "sla_hours", "system"})
    try:
        sla = float(settings.get("sla_hours", DEFAULT_SLA_HOURS))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"target '{target_key}': sla_hours must be a number of hours"
        ) from exc
    if sla <= 0:
        raise ConfigurationError(f"target '{target_key}': sla_hours must be more than zero")
    return ManualConnector(
        str(settings.get("system", target_key)),
        assignee=str(settings.get("assignee", DEFAULT_ASSIGNEE)),
        sla_hours=sla,
    )


register("sql_table", _sql_table)
register("memory", _memory)
register("manual", _manual)
register("ldap", build_ldap)
register("scim", build_scim)
register("door_system", build_doors)
register("csv_file", build_csv_file)
register("webhook", build_webhook)
