"""Role bindings, API tokens and principals from HR, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hub_helpers import A, add_person, org
from sqlalchemy.engine import Engine

from pasa.audit import log as audit
from pasa.domain.access import Action, Binding, Resource, Role, Scope, decide
from pasa.domain.errors import NotFoundError
from pasa.service import access
from pasa.store import schema as s

DAY = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def trust(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org(conn, "RXL")
        org(conn, "RYJ")
        manager = add_person(conn, "Mary", "Ward", A("100", dt.date(2020, 1, 1)))
        nurse = add_person(conn, "Nia", "Nurse", A("200", dt.date(2024, 1, 1), supervisor="100"))
        starter = add_person(
            conn, "Sam", "Starter", A("300", dt.date(2026, 12, 1), supervisor="100")
        )
        gone = add_person(
            conn,
            "Gus",
            "Gone",
            A("400", dt.date(2020, 1, 1), dt.date(2026, 9, 1), supervisor="100"),
        )
        recent = add_person(
            conn,
            "Rae",
            "Recent",
            A("500", dt.date(2020, 1, 1), dt.date(2026, 11, 10), supervisor="100"),
        )
        # Same supervisor assignment number in another trust: not Mary's report.
        elsewhere = add_person(
            conn, "Eve", "Else", A("600", dt.date(2024, 1, 1), supervisor="100"), ods="RYJ"
        )
        for pid, email in ((manager, "Mary.Ward@nhs.net"), (nurse, "nia.nurse@nhs.net")):
            conn.execute(s.person.update().where(s.person.c.id == pid).values(email=email))
    return {
        "manager": manager,
        "nurse": nurse,
        "starter": starter,
        "gone": gone,
        "recent": recent,
        "elsewhere": elsewhere,
    }


def test_a_line_manager_follows_from_hr(engine: Engine, trust: dict[str, int]) -> None:
    mary = access.user_principal(engine, "mary.ward@NHS.net", at=DAY)
    assert mary.person_id == trust["manager"]
    assert mary.person_organisations == {"RXL"}
    # Current reports, upcoming starters and recent leavers; not old leavers, not another
    # trust's assignment with the same supervisor number.
    assert set(mary.reports) == {trust["nurse"], trust["starter"], trust["recent"]}
    assert Role.LINE_MANAGER in mary.roles() and Role.STAFF in mary.roles()
    nurse_record = Resource.of("RXL", person_id=trust["nurse"])
    assert decide(mary, Action.REVEAL_HANDOVER, nurse_record)
    assert (
        decide(mary, Action.READ_ACCESS, Resource.of("RXL", person_id=trust["gone"])).status == 404
    )

    nia = access.user_principal(engine, "nia.nurse@nhs.net", at=DAY)
    assert nia.person_id == trust["nurse"] and not nia.reports
    assert decide(nia, Action.READ_ACCESS, nurse_record)
    assert (
        decide(nia, Action.READ_ACCESS, Resource.of("RXL", person_id=trust["manager"])).status
        == 404
    )


def test_an_unknown_user_holds_nothing(engine: Engine, trust: dict[str, int]) -> None:
    nobody = access.user_principal(engine, "who@example.org", at=DAY)
    assert nobody.person_id is None and not nobody.bindings and not nobody.reports
    assert decide(nobody, Action.READ_PEOPLE, Resource.of("RXL")).status == 404


def test_roles_are_granted_audited_and_revoked(engine: Engine, trust: dict[str, int]) -> None:
    granted = access.grant_role(
        engine, "IT.Lead@nhs.net", "org_admin", organisation="rxl", actor="root"
    )
    again = access.grant_role(
        engine, "it.lead@nhs.net", Role.ORG_ADMIN, organisation="RXL", actor="root"
    )
    assert again.binding_id == granted.binding_id
    lead = access.user_principal(engine, "it.lead@nhs.net", at=DAY)
    assert lead.bindings == {Binding(Role.ORG_ADMIN, "RXL")}
    assert decide(lead, Action.MANAGE_POLICY, Resource.of("RXL"))
    assert decide(lead, Action.MANAGE_POLICY, Resource.of("RYJ")).status == 404

    access.revoke_role(engine, granted.binding_id, actor="root")
    assert not access.user_principal(engine, "it.lead@nhs.net", at=DAY).bindings
    with pytest.raises(NotFoundError):
        access.revoke_role(engine, granted.binding_id, actor="root")
    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(s.audit_log.c.action)
            .where(s.audit_log.c.subject_type == "role_binding")
            .order_by(s.audit_log.c.seq)
        ).scalars()
        assert list(actions) == ["role.granted", "role.revoked"]
        assert audit.verify(conn).ok


@pytest.mark.parametrize(
    ("role", "kwargs", "message"),
    [
        ("line_manager", {"organisation": "RXL"}, "follows from HR"),
        ("wizard", {"organisation": "RXL"}, "unknown role 'wizard'.*org_admin"),
        ("org_admin", {"organisation": None}, "give its ODS code"),
        ("platform_admin", {"organisation": "RXL"}, "give no --org"),
        ("system_owner", {"organisation": "RXL"}, "give --target"),
        ("auditor", {"organisation": "RXL", "target": "pacs"}, "only a system owner"),
        ("auditor", {"organisation": "ZZZ"}, "no organisation 'ZZZ'.*RXL, RYJ"),
        ("system_owner", {"organisation": "RXL", "target": "nope"}, "no target 'nope'"),
    ],
)
def test_a_role_that_cannot_be_granted_is_refused_clearly(
    engine: Engine, trust: dict[str, int], role: str, kwargs: dict[str, str | None], message: str
) -> None:
    with pytest.raises((access.AccessError, NotFoundError), match=message):
        access.grant_role(engine, "x@nhs.net", role, actor="root", **kwargs)  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.role_binding)).scalar() == 0


def test_a_token_is_shown_once_stored_hashed_and_scoped(
    engine: Engine, trust: dict[str, int]
) -> None:
    new = access.create_token(
        engine, organisation="RXL", scopes=["scim"], name="EPR sync", actor="it", now=NOW
    )
    assert new.secret.startswith("pasa_") and len(new.secret) > 40
    assert new.row.prefix == new.secret[:11] and new.row.scopes == (Scope.SCIM,)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(s.api_token)).one()
        assert new.secret not in repr(tuple(stored))
        entries = conn.execute(
            sa.select(s.audit_log).where(s.audit_log.c.action == "token.created")
        ).all()
        assert len(entries) == 1 and new.secret not in repr(entries)

    principal = access.token_principal(engine, new.secret, now=NOW + dt.timedelta(days=1))
    assert principal.is_token and principal.token_organisation == "RXL"
    assert decide(principal, Action.SCIM_WRITE, Resource.of("RXL"))
    assert decide(principal, Action.SCIM_READ, Resource.of("RYJ")).status == 404
    assert decide(principal, Action.READ_AUDIT, Resource.of("RXL")).status == 403
    with engine.connect() as conn:
        assert conn.execute(sa.select(s.api_token.c.last_used_at)).scalar() is not None


def test_expired_revoked_and_unknown_tokens_are_refused(
    engine: Engine, trust: dict[str, int]
) -> None:
    new = access.create_token(
        engine, organisation="RXL", scopes=["api:read"], name="reports", actor="it", days=1, now=NOW
    )
    with pytest.raises(access.InvalidToken, match=r"'reports' .* expired"):
        access.token_principal(engine, new.secret, now=NOW + dt.timedelta(days=1, seconds=1))
    with pytest.raises(access.InvalidToken, match="unknown API token") as caught:
        access.token_principal(engine, new.secret[:-1] + "x", now=NOW)
    assert new.secret[:-1] not in str(caught.value)
    with pytest.raises(access.InvalidToken, match="not a PASA API token"):
        access.token_principal(engine, "Bearer abc", now=NOW)

    access.revoke_token(engine, new.row.token_id, actor="it")
    with pytest.raises(access.InvalidToken, match="revoked"):
        access.token_principal(engine, new.secret, now=NOW)
    assert access.list_tokens(engine)[0].state(NOW) == "revoked"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scopes": ["root"]}, "unknown scope 'root'"),
        ({"scopes": []}, "at least one scope"),
        ({"name": " "}, "needs a name"),
        ({"days": 400}, "1 to 366 days"),
        ({"organisation": "ZZZ"}, "no organisation 'ZZZ'"),
    ],
)
def test_a_bad_token_request_is_refused_clearly(
    engine: Engine, trust: dict[str, int], kwargs: dict[str, object], message: str
) -> None:
    request: dict[str, object] = {"organisation": "RXL", "scopes": ["scim"], "name": "x"}
    request.update(kwargs)
    with pytest.raises((access.AccessError, NotFoundError), match=message):
        access.create_token(engine, actor="it", **request)  # type: ignore[arg-type]
    assert access.list_tokens(engine) == []
