"""The planner: desired state vs recorded state -> ordered, explained operations. Pure.

For each person and target:

* a desired account with no recorded account (or only a deleted one) -> ``create_account``
  with a newly allocated username (a rehired person gets their old name back), created
  disabled when only a pre-hire window or a suspension justifies it, then
  ``add_membership`` for every desired grant;
* a recorded account whose enabled state differs -> ``enable`` / ``disable``; a change of
  name on a ``rename_on_name_change`` target -> ``rename``; attributes that differ ->
  ``update_attributes`` carrying only the changed ones; grants added and removed by set
  difference (on ``dated_access`` targets a changed validity window re-sends the grant);
* a recorded account of an *evaluated* person that nothing justifies any more ->
  ``remove_membership`` for every recorded grant, then ``disable`` (if still enabled), and
  ``delete`` once it has been disabled for the target's ``retention_days``.

People outside ``desired.evaluated_person_ids`` are never touched, so planning a subset
of people is safe. Operations are ordered by (target, person, phase, value) with the phase
order of ``pasa.domain.operations.PHASE``: create, rename, update, enable, add, remove,
disable, delete.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from pasa.domain.errors import ConfigurationError
from pasa.domain.grants import (
    AccountStatus,
    DesiredAccount,
    DesiredGrant,
    DesiredState,
    EntitlementKind,
    Reason,
    RecordedAccount,
    RecordedGrant,
    RecordedState,
)
from pasa.domain.operations import PHASE, OperationKind, PlannedOperation
from pasa.planning.usernames import UsernameAllocator
from pasa.policy.document import TargetSpec

_KIND_WORDS = {
    EntitlementKind.GROUP: "group",
    EntitlementKind.APP_ROLE: "app role",
    EntitlementKind.DOOR_ZONE: "door zone",
}
_STATUS_RANK = {AccountStatus.ENABLED: 0, AccountStatus.DISABLED: 1, AccountStatus.DELETED: 2}


@dataclass(frozen=True, slots=True)
class Plan:
    """The operations that take recorded state to desired state on ``at``, in order."""

    at: dt.date
    operations: tuple[PlannedOperation, ...]

    @property
    def is_empty(self) -> bool:
        return not self.operations

    def counts_by_target_kind(self) -> dict[tuple[str, OperationKind], int]:
        """How many operations of each kind per target, sorted by target then phase."""
        counts = Counter((op.target, op.kind) for op in self.operations)
        return dict(sorted(counts.items(), key=lambda kv: (kv[0][0], PHASE[kv[0][1]])))

    def for_person(self, person_id: int) -> tuple[PlannedOperation, ...]:
        return tuple(op for op in self.operations if op.person_id == person_id)


def _not_justified(detail: str) -> Reason:
    return Reason("not_justified", None, None, "", "", detail)


def current_accounts(
    accounts: Iterable[RecordedAccount],
) -> dict[tuple[int, str], RecordedAccount]:
    """The account that counts per (person, target): live before deleted, newest first."""
    best: dict[tuple[int, str], RecordedAccount] = {}
    for account in accounts:
        key = (account.person_id, account.target)
        held = best.get(key)
        if held is None or (_STATUS_RANK[account.status], -account.account_id) < (
            _STATUS_RANK[held.status],
            -held.account_id,
        ):
            best[key] = account
    return best


def _kept(attributes: Mapping[str, str | None], kept: tuple[str, ...]) -> dict[str, str | None]:
    return {name: attributes.get(name) for name in kept}


def plan(
    desired: DesiredState,
    recorded: RecordedState,
    targets: Mapping[str, TargetSpec],
    taken_usernames: Mapping[str, set[str]],
) -> Plan:
    """Operations taking ``recorded`` to ``desired``; deterministic for the same inputs."""
    evaluated = desired.evaluated_person_ids
    day = desired.at.isoformat()
    accounts = current_accounts(a for a in recorded.accounts if a.person_id in evaluated)
    recorded_grants: dict[int, set[tuple[EntitlementKind, str]]] = {}
    validity: dict[tuple[int, EntitlementKind, str], Window] = {}
    for g in recorded.grants:
        if g.person_id in evaluated:
            recorded_grants.setdefault(g.account_id, set()).add((g.kind, g.value))
            if g.valid_from is not None or g.valid_to is not None:
                validity[(g.account_id, g.kind, g.value)] = (g.valid_from, g.valid_to)

    desired_grants: dict[tuple[int, str], list[DesiredGrant]] = {}
    for dg in desired.grants:
        desired_grants.setdefault((dg.person_id, dg.target), []).append(dg)
    people_with_access = {a.person_id for a in desired.accounts}

    allocators: dict[str, UsernameAllocator] = {}
    keyed: list[tuple[tuple[str, int, int, str, str], PlannedOperation]] = []

    def emit(op: PlannedOperation) -> None:
        value = str(op.payload.get("value", ""))
        keyed.append(((op.target, op.person_id, PHASE[op.kind], op.kind.value, value), op))

    desired_keys: set[tuple[int, str]] = set()
    for da in sorted(desired.accounts, key=lambda a: (a.target, a.person_id)):
        key = (da.person_id, da.target)
        desired_keys.add(key)
        spec = targets.get(da.target)
        if spec is None:
            raise ConfigurationError(
                f"person {da.person_id} should have an account on unknown target "
                f"{da.target!r} (known: {', '.join(sorted(targets))})"
            )
        _plan_account(
            da, accounts.get(key), desired_grants.get(key, []), spec,
            recorded_grants, validity, allocators, taken_usernames, emit,
        )  # fmt: skip

    live = sorted(
        (a for a in recorded.accounts if a.person_id in evaluated),
        key=lambda a: (a.target, a.person_id, a.account_id),
    )
    for account in live:
        key = (account.person_id, account.target)
        kept = accounts[key]
        if account.status == AccountStatus.DELETED or (
            key in desired_keys and account.account_id == kept.account_id
        ):
            continue
        if key in desired_keys:
            why = f"duplicate account: {kept.username} is the account kept on {account.target}"
        elif account.person_id in people_with_access:
            why = f"no rule grants an account on {account.target} any more"
        else:
            why = f"no active assignment on {day} justifies it"
        _revoke(account, recorded_grants.get(account.account_id, set()), why, emit)
        spec = targets.get(account.target)
        retention = spec.lifecycle.retention_days if spec is not None else None
        if (
            retention is not None
            and account.status == AccountStatus.DISABLED
            and account.status_since is not None
            and desired.at >= account.status_since + dt.timedelta(days=retention)
        ):
            why = (
                f"disabled since {account.status_since}; {account.target} keeps disabled "
                f"accounts for {retention} days"
            )
            emit(
                PlannedOperation(
                    OperationKind.DELETE,
                    account.person_id,
                    account.target,
                    account.username,
                    {},
                    (_not_justified(why),),
                    f"delete account {account.username} on {account.target} ({why})",
                )
            )

    keyed.sort(key=lambda pair: pair[0])
    return Plan(at=desired.at, operations=tuple(op for _, op in keyed))


def _revoke(
    account: RecordedAccount,
    grants: set[tuple[EntitlementKind, str]],
    why: str,
    emit: Callable[[PlannedOperation], None],
) -> None:
    """Remove every grant of an account nothing justifies, then disable it."""
    reasons = (_not_justified(why),)
    person_id, target, username = account.person_id, account.target, account.username
    for kind, value in sorted(grants):
        emit(
            PlannedOperation(
                OperationKind.REMOVE_MEMBERSHIP,
                person_id,
                target,
                username,
                {"kind": kind.value, "value": value},
                reasons,
                f"remove {_KIND_WORDS[kind]} {value} from {username} on {target} ({why})",
            )
        )
    if account.status == AccountStatus.ENABLED:
        name = account.attributes.get("display_name") or f"person {person_id}"
        emit(
            PlannedOperation(
                OperationKind.DISABLE,
                person_id,
                target,
                username,
                {},
                reasons,
                f"disable account {username} on {target} for {name} ({why})",
            )
        )


Window = tuple[dt.date | None, dt.date | None]
_NAME_ATTRIBUTES = ("first_name", "last_name", "display_name")


def _allocator(
    spec: TargetSpec,
    allocators: dict[str, UsernameAllocator],
    taken_usernames: Mapping[str, set[str]],
) -> UsernameAllocator:
    allocator = allocators.get(spec.key)
    if allocator is None:
        allocator = UsernameAllocator(
            spec.username_template,
            spec.username_max_length,
            taken_usernames.get(spec.key, set()),
        )
        allocators[spec.key] = allocator
    return allocator


def _derives_from(username: str, base: str, max_length: int) -> bool:
    """``username`` is what the allocator makes of ``base``: the base itself, or the base cut
    to leave room for a numeric suffix, plus that suffix (``jsmith2``; not for ``jsmithson``)."""
    name = username.lower()
    if name == base:
        return True
    stem = name.rstrip("0123456789")
    suffix = name[len(stem) :]
    if not stem or not suffix:
        return False
    return stem == (base[: max(max_length - len(suffix), 1)].rstrip("._-") or base[:1])


def _lifecycle_note(reasons: tuple[Reason, ...]) -> str:
    """Why a desired account is held disabled (pre-hire or suspended), for summaries."""
    details = sorted({r.detail for r in reasons if r.detail})
    return f" ({'; '.join(details)})" if details else ""


def _plan_account(
    da: DesiredAccount,
    account: RecordedAccount | None,
    grants: list[DesiredGrant],
    spec: TargetSpec,
    recorded_grants: Mapping[int, set[tuple[EntitlementKind, str]]],
    validity: Mapping[tuple[int, EntitlementKind, str], Window],
    allocators: dict[str, UsernameAllocator],
    taken_usernames: Mapping[str, set[str]],
    emit: Callable[[PlannedOperation], None],
) -> None:
    target = da.target
    pid = da.person_id
    everything = da.attributes.as_dict()
    wanted = _kept(everything, spec.kept_attributes())
    name = da.attributes.display_name
    held: set[tuple[EntitlementKind, str]] = set()
    account_id: int | None = None

    if account is None or account.status == AccountStatus.DELETED:
        allocator = _allocator(spec, allocators, taken_usernames)
        if account is not None and not (
            spec.lifecycle.rename_on_name_change
            and not _derives_from(
                account.username, allocator.base(everything), spec.username_max_length
            )
        ):
            username = account.username  # rehire: the person's own name comes back
        else:
            username = allocator.allocate(everything)
        again = " again" if account is not None else ""
        payload: dict[str, object] = {"attributes": wanted}
        note = ""
        if not da.enabled:
            payload["enabled"] = False
            note = f", disabled{_lifecycle_note(da.reasons)}"
        emit(
            PlannedOperation(
                OperationKind.CREATE_ACCOUNT,
                pid,
                target,
                username,
                payload,
                da.reasons,
                f"create account {username} on {target} for {name}{again}{note}",
            )
        )
    else:
        username = account.username
        account_id = account.account_id
        held = recorded_grants.get(account.account_id, set())
        renamed = spec.lifecycle.rename_on_name_change and any(
            account.attributes.get(attr) != everything[attr]
            for attr in _NAME_ATTRIBUTES
            if attr in account.attributes
        )
        if renamed:
            allocator = _allocator(spec, allocators, taken_usernames)
            if not _derives_from(username, allocator.base(everything), spec.username_max_length):
                new_username = allocator.allocate(everything)
                emit(
                    PlannedOperation(
                        OperationKind.RENAME,
                        pid,
                        target,
                        username,
                        {"new_username": new_username},
                        da.reasons,
                        f"rename account {username} to {new_username} on {target} for {name}",
                    )
                )
                username = new_username
        changes = {
            attr: [account.attributes.get(attr), new]
            for attr, new in wanted.items()
            if account.attributes.get(attr) != new
        }
        if changes:
            emit(
                PlannedOperation(
                    OperationKind.UPDATE_ATTRIBUTES,
                    pid,
                    target,
                    username,
                    {"changes": changes},
                    da.reasons,
                    f"update {', '.join(changes)} of {username} on {target} for {name}",
                )
            )
        if account.status == AccountStatus.DISABLED and da.enabled:
            emit(
                PlannedOperation(
                    OperationKind.ENABLE,
                    pid,
                    target,
                    username,
                    {},
                    da.reasons,
                    f"enable account {username} on {target} for {name}",
                )
            )
        elif account.status == AccountStatus.ENABLED and not da.enabled:
            emit(
                PlannedOperation(
                    OperationKind.DISABLE,
                    pid,
                    target,
                    username,
                    {},
                    da.reasons,
                    f"disable account {username} on {target} for {name}"
                    f"{_lifecycle_note(da.reasons)}",
                )
            )

    wanted_grants: set[tuple[EntitlementKind, str]] = set()
    for dg in grants:
        item = (dg.kind, dg.value)
        wanted_grants.add(item)
        window = (dg.valid_from, dg.valid_to)
        if item in held:
            recorded_window = validity.get((account_id or 0, dg.kind, dg.value), (None, None))
            if recorded_window == window:
                continue
        payload = {"kind": dg.kind.value, "value": dg.value}
        dates = ""
        if dg.valid_from is not None:
            payload["valid_from"] = dg.valid_from.isoformat()
            dates += f" from {dg.valid_from}"
        if dg.valid_to is not None:
            payload["valid_to"] = dg.valid_to.isoformat()
            dates += f" until {dg.valid_to}"
        verb = "update the dates of" if item in held else "add"
        preposition = "on" if item in held else "to"
        emit(
            PlannedOperation(
                OperationKind.ADD_MEMBERSHIP,
                pid,
                target,
                username,
                payload,
                dg.reasons,
                f"{verb} {_KIND_WORDS[dg.kind]} {dg.value}{dates} {preposition} {username} "
                f"on {target} for {name}",
            )
        )
    for kind, value in sorted(held - wanted_grants):
        why = f"no rule grants {_KIND_WORDS[kind]} {value} on {target} any more"
        emit(
            PlannedOperation(
                OperationKind.REMOVE_MEMBERSHIP,
                pid,
                target,
                username,
                {"kind": kind.value, "value": value},
                (_not_justified(why),),
                f"remove {_KIND_WORDS[kind]} {value} from {username} on {target} ({why})",
            )
        )


def _date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else None


def apply_to_recorded(
    recorded: RecordedState,
    operations: Iterable[PlannedOperation],
    at: dt.date | None = None,
) -> RecordedState:
    """The recorded state after ``operations`` all succeed (for previews and tests).

    New accounts get ids after the highest recorded one, in operation order; ``at`` is the
    date status changes are recorded as starting (retention counts from it).
    """
    accounts: dict[int, RecordedAccount] = {a.account_id: a for a in recorded.accounts}
    by_name = {
        (a.person_id, a.target, a.username): a
        for a in sorted(
            accounts.values(), key=lambda a: (a.status != AccountStatus.DELETED, a.account_id)
        )
    }
    grants: dict[tuple[int, EntitlementKind, str], RecordedGrant] = {
        (g.account_id, g.kind, g.value): g for g in recorded.grants
    }
    deleted: dict[tuple[int, str], RecordedAccount] = {
        (a.person_id, a.target): a
        for a in sorted(accounts.values(), key=lambda a: a.account_id)
        if a.status == AccountStatus.DELETED
    }
    next_id = max(accounts, default=0) + 1
    for op in operations:
        key = (op.person_id, op.target, op.username)
        if op.kind == OperationKind.CREATE_ACCOUNT:
            enabled = op.payload.get("enabled", True) is not False
            # Like the ledger: a person's deleted account on the target is revived (same id),
            # whatever name it comes back under.
            previous = by_name.get(key) or deleted.get((op.person_id, op.target))
            if previous is not None and previous.username != op.username:
                by_name.pop((op.person_id, op.target, previous.username), None)
            created = RecordedAccount(
                previous.account_id if previous is not None else next_id,
                op.person_id, op.target, op.username,
                AccountStatus.ENABLED if enabled else AccountStatus.DISABLED,
                dict(op.payload.get("attributes", {})), at,
            )  # fmt: skip
            deleted.pop((op.person_id, op.target), None)
            if previous is None:
                next_id += 1
            else:  # a revived account starts with nothing, as the ledger records it
                for grant_key in [k for k in grants if k[0] == created.account_id]:
                    del grants[grant_key]
            accounts[created.account_id] = created
            by_name[key] = created
            continue
        account = by_name[key]
        if op.kind == OperationKind.RENAME:
            del by_name[key]
            account = replace(account, username=op.payload["new_username"])
            key = (op.person_id, op.target, account.username)
        elif op.kind == OperationKind.UPDATE_ATTRIBUTES:
            attributes = dict(account.attributes)
            attributes.update({k: v[1] for k, v in op.payload["changes"].items()})
            account = replace(account, attributes=attributes)
        elif op.kind == OperationKind.ENABLE:
            account = replace(account, status=AccountStatus.ENABLED, status_since=at)
        elif op.kind == OperationKind.DISABLE:
            account = replace(account, status=AccountStatus.DISABLED, status_since=at)
        elif op.kind == OperationKind.DELETE:
            account = replace(account, status=AccountStatus.DELETED, status_since=at)
            deleted[(op.person_id, op.target)] = account
            for grant_key in [k for k in grants if k[0] == account.account_id]:
                del grants[grant_key]
        elif op.kind == OperationKind.ADD_MEMBERSHIP:
            kind = EntitlementKind(op.payload["kind"])
            grants[(account.account_id, kind, op.payload["value"])] = RecordedGrant(
                account.account_id, op.person_id, op.target, kind, op.payload["value"],
                _date(op.payload.get("valid_from")), _date(op.payload.get("valid_to")),
            )  # fmt: skip
        elif op.kind == OperationKind.REMOVE_MEMBERSHIP:
            kind = EntitlementKind(op.payload["kind"])
            grants.pop((account.account_id, kind, op.payload["value"]), None)
        accounts[account.account_id] = account
        by_name[key] = account
    return RecordedState(
        accounts=tuple(sorted(accounts.values(), key=lambda a: a.account_id)),
        grants=tuple(grants[k] for k in sorted(grants, key=lambda k: (k[0], k[1].value, k[2]))),
    )
