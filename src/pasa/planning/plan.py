"""The planner: desired state vs recorded state -> ordered, explained operations. Pure.

For each person and target:

* a desired account with no recorded account (or only a deleted one) -> ``create_account``
  with a newly allocated username, then ``add_membership`` for every desired grant;
* a recorded disabled account -> ``enable``; attributes that differ -> ``update_attributes``
  carrying only the changed ones; grants added and removed by set difference;
* a recorded account of an *evaluated* person that nothing justifies any more ->
  ``remove_membership`` for every recorded grant, then ``disable`` (if still enabled).

People outside ``desired.evaluated_person_ids`` are never touched, so planning a subset
of people is safe. Operations are ordered by (target, person, phase, value) with the phase
order of ``pasa.domain.operations.PHASE``: create, update, enable, add, remove, disable.
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
    for g in recorded.grants:
        if g.person_id in evaluated:
            recorded_grants.setdefault(g.account_id, set()).add((g.kind, g.value))

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
            recorded_grants, allocators, taken_usernames, emit,
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


def _plan_account(
    da: DesiredAccount,
    account: RecordedAccount | None,
    grants: list[DesiredGrant],
    spec: TargetSpec,
    recorded_grants: Mapping[int, set[tuple[EntitlementKind, str]]],
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

    if account is None or account.status == AccountStatus.DELETED:
        allocator = allocators.get(target)
        if allocator is None:
            allocator = UsernameAllocator(
                spec.username_template,
                spec.username_max_length,
                taken_usernames.get(target, set()),
            )
            allocators[target] = allocator
        username = allocator.allocate(everything)
        again = " again" if account is not None else ""
        emit(
            PlannedOperation(
                OperationKind.CREATE_ACCOUNT,
                pid,
                target,
                username,
                {"attributes": wanted},
                da.reasons,
                f"create account {username} on {target} for {name}{again}",
            )
        )
    else:
        username = account.username
        held = recorded_grants.get(account.account_id, set())
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
        if account.status == AccountStatus.DISABLED:
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

    wanted_grants: set[tuple[EntitlementKind, str]] = set()
    for dg in grants:
        item = (dg.kind, dg.value)
        wanted_grants.add(item)
        if item in held:
            continue
        emit(
            PlannedOperation(
                OperationKind.ADD_MEMBERSHIP,
                pid,
                target,
                username,
                {"kind": dg.kind.value, "value": dg.value},
                dg.reasons,
                f"add {_KIND_WORDS[dg.kind]} {dg.value} to {username} on {target} for {name}",
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


def apply_to_recorded(
    recorded: RecordedState, operations: Iterable[PlannedOperation]
) -> RecordedState:
    """The recorded state after ``operations`` all succeed (for previews and tests).

    New accounts get ids after the highest recorded one, in operation order.
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
    next_id = max(accounts, default=0) + 1
    for op in operations:
        key = (op.person_id, op.target, op.username)
        if op.kind == OperationKind.CREATE_ACCOUNT:
            created = RecordedAccount(
                next_id, op.person_id, op.target, op.username, AccountStatus.ENABLED,
                dict(op.payload.get("attributes", {})),
            )  # fmt: skip
            next_id += 1
            accounts[created.account_id] = created
            by_name[key] = created
            continue
        account = by_name[key]
        if op.kind == OperationKind.UPDATE_ATTRIBUTES:
            attributes = dict(account.attributes)
            attributes.update({k: v[1] for k, v in op.payload["changes"].items()})
            account = replace(account, attributes=attributes)
        elif op.kind == OperationKind.ENABLE:
            account = replace(account, status=AccountStatus.ENABLED)
        elif op.kind == OperationKind.DISABLE:
            account = replace(account, status=AccountStatus.DISABLED)
        elif op.kind == OperationKind.DELETE:
            account = replace(account, status=AccountStatus.DELETED)
        elif op.kind == OperationKind.ADD_MEMBERSHIP:
            kind = EntitlementKind(op.payload["kind"])
            grants[(account.account_id, kind, op.payload["value"])] = RecordedGrant(
                account.account_id, op.person_id, op.target, kind, op.payload["value"]
            )
        elif op.kind == OperationKind.REMOVE_MEMBERSHIP:
            kind = EntitlementKind(op.payload["kind"])
            grants.pop((account.account_id, kind, op.payload["value"]), None)
        accounts[account.account_id] = account
        by_name[key] = account
    return RecordedState(
        accounts=tuple(sorted(accounts.values(), key=lambda a: a.account_id)),
        grants=tuple(grants[k] for k in sorted(grants, key=lambda k: (k[0], k[1].value, k[2]))),
    )
