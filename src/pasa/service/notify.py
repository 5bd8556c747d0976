"""Email notifications through an outbox: queued in the transaction of the change they tell
about, sent later by SMTP (``PASA_SMTP_HOST`` ...), or — with no SMTP host, the embedded
default — written to the log and kept in the outbox as ``logged``.

Bodies say what happened and where to look; they never carry secrets (no activation codes,
no tokens): the reader signs in to PASA to act. The one exception is a passport offer's
transaction code, which must reach the person on a channel other than the page showing the
offer: its body is sealed with the passport key-encryption key in the outbox, never logged,
and replaced by a placeholder once sent (or logged, when there is no SMTP server).
"""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from pasa.clock import now as utcnow
from pasa.config import Settings, get_settings
from pasa.domain.errors import PasaError
from pasa.domain.requests import STAGE_NAMES, Stage
from pasa.passport.keys import KeyEncryptionKey
from pasa.store import schema as s

log = structlog.get_logger(__name__)

# An address that keeps failing is given up after this many attempts (visible in the outbox).
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Message:
    kind: str
    recipient: str
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What an email about a request may say (nothing secret)."""

    request_id: int
    person: str
    what: str
    target: str
    requested_by: str
    justification: str
    valid_to: dt.date | None


def _link(request_id: int) -> str:
    base = (get_settings().public_url or "").rstrip("/")
    return f"{base}/requests/{request_id}"


def _lines(facts: RequestFacts) -> str:
    until = f"until {facts.valid_to:%-d %B %Y}" if facts.valid_to else "with no end date"
    return (
        f"Request #{facts.request_id}: {facts.what} on {facts.target} for {facts.person}, "
        f"{until}.\nRequested by {facts.requested_by}, because: {facts.justification}\n"
    )


def approval_needed(facts: RequestFacts, to: str, stage: Stage) -> Message:
    return Message(
        "approval_needed",
        to,
        f"Access request #{facts.request_id} needs your approval ({STAGE_NAMES[stage]})",
        f"{_lines(facts)}\nApprove or reject it, with a reason: {_link(facts.request_id)}\n",
    )


def reminder(facts: RequestFacts, to: str, stage: Stage, sla_hours: int) -> Message:
    return Message(
        "reminder",
        to,
        f"Reminder: access request #{facts.request_id} is waiting for you",
        f"{_lines(facts)}\nIt has waited more than {sla_hours} hours for the "
        f"{STAGE_NAMES[stage]}. Please decide it: {_link(facts.request_id)}\n",
    )


def escalated(facts: RequestFacts, to: str, stage: Stage, sla_hours: int) -> Message:
    return Message(
        "escalation",
        to,
        f"Escalated: access request #{facts.request_id} is overdue",
        f"{_lines(facts)}\nIt has waited more than {2 * sla_hours} hours for the "
        f"{STAGE_NAMES[stage]}. The identity team may decide it: {_link(facts.request_id)}\n",
    )


def decided(facts: RequestFacts, to: str, approved: bool, reason: str, by: str) -> Message:
    word = "approved" if approved else "rejected"
    why = f"\nReason given by {by}: {reason}\n" if reason else ""
    after = (
        "\nThe access is being set up now; follow it to ready on the request's page.\n"
        if approved
        else ""
    )
    return Message(
        "decision",
        to,
        f"Access request #{facts.request_id} was {word}",
        f"{_lines(facts)}{why}{after}{_link(facts.request_id)}\n",
    )


def queue(conn: Connection, message: Message, *, request_id: int | None = None) -> None:
    """Put ``message`` in the outbox, in the caller's transaction."""
    conn.execute(
        s.notification.insert().values(
            kind=message.kind,
            recipient=message.recipient,
            subject=message.subject[:300],
            body=message.body,
            request_id=request_id,
            status="pending",
            created_at=utcnow(),
        )
    )


# Messages that carry a secret (an offer's transaction code): the body is sealed with the
# passport key-encryption key in the outbox, never logged, and replaced once sent.
SEALED_KINDS = frozenset({"passport_tx_code"})
REDACTED = "(removed once sent: it held a one-time code)"


def _seal_context(kind: str, recipient: str) -> str:
    return f"notification:{kind}:{recipient.lower()}"


def tx_code(to: str, code: str, expires_at: dt.datetime) -> Message:
    """The transaction code of a passport credential offer: the second channel."""
    return Message(
        "passport_tx_code",
        to,
        "Your Digital Staff Passport transaction code",
        f"Your transaction code is {code}\n\nEnter it in your wallet app when it asks, to "
        f"collect your passport credentials. It works once, until {expires_at:%H:%M} UTC on "
        f"{expires_at:%-d %B %Y}.\nIf you did not ask for your passport credentials, tell "
        "the identity team: someone may be using your sign-in.\n",
    )


def credential_replaced(to: str, what: str) -> Message:
    """A passport credential was revoked because the HR record it attests changed."""
    return Message(
        "passport_replaced",
        to,
        "Your Digital Staff Passport credential has been replaced",
        f"Your {what} credential no longer matches your HR record (for example a new post or "
        "a change of name), so it has been revoked and will not be accepted.\n\nCollect the "
        "up-to-date credential from My credentials in PASA (/my-credentials) into your wallet.\n",
    )


def queue_sealed(conn: Connection, message: Message, kek: KeyEncryptionKey) -> None:
    """Queue a message whose body is a secret: only its sealed form is stored."""
    sealed = kek.encrypt(
        message.body.encode(), context=_seal_context(message.kind, message.recipient)
    )
    queue(conn, Message(message.kind, message.recipient, message.subject, sealed))


def _body(row: sa.Row[tuple[object, ...]]) -> str:
    if row.kind not in SEALED_KINDS:
        return str(row.body)
    return (
        KeyEncryptionKey.from_env()
        .decrypt(str(row.body), context=_seal_context(str(row.kind), str(row.recipient)))
        .decode()
    )


@dataclass(frozen=True, slots=True)
class SendReport:
    sent: int = 0
    logged: int = 0
    failed: int = 0


def _email(settings: Settings, row: sa.Row[tuple[object, ...]], body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = str(row.recipient)
    message["Subject"] = str(row.subject)
    message["Message-ID"] = f"<pasa-notification-{row.id}@{settings.smtp_from.split('@')[-1]}>"
    message.set_content(body)
    return message


def send_pending(engine: Engine, settings: Settings | None = None, limit: int = 200) -> SendReport:
    """Send what waits in the outbox over one SMTP connection; with no SMTP host, log it."""
    settings = settings or get_settings()
    n = s.notification
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(n)
            .where(n.c.status == "pending", n.c.attempts < MAX_ATTEMPTS)
            .order_by(n.c.id)
            .limit(limit)
        ).all()
    if not rows:
        return SendReport()
    if not settings.smtp_host:
        with engine.begin() as conn:
            for row in rows:
                sealed = row.kind in SEALED_KINDS
                log.info(
                    "notification.outbox",
                    to=row.recipient,
                    subject=row.subject,
                    body=REDACTED if sealed else row.body,
                    note="no PASA_SMTP_HOST: kept in the outbox, not sent",
                )
                conn.execute(
                    n.update()
                    .where(n.c.id == row.id)
                    .values(
                        status="logged",
                        sent_at=utcnow(),
                        **({"body": REDACTED} if sealed else {}),
                    )
                )
        return SendReport(logged=len(rows))
    sent = failed = 0
    try:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
    except OSError as exc:
        log.warning("notification.smtp_unreachable", host=settings.smtp_host, error=str(exc))
        _failed(engine, [r.id for r in rows], f"SMTP server unreachable: {exc}")
        return SendReport(failed=len(rows))
    with smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        for row in rows:
            try:
                body = _body(row)
            except PasaError as exc:  # no or another key-encryption key: cannot unseal
                failed += 1
                _failed(engine, [row.id], f"sealed message cannot be opened: {exc}")
                continue
            try:
                smtp.send_message(_email(settings, row, body))
            except smtplib.SMTPException as exc:
                failed += 1
                _failed(engine, [row.id], f"{type(exc).__name__}: {exc}")
                continue
            sent += 1
            with engine.begin() as conn:
                conn.execute(
                    n.update()
                    .where(n.c.id == row.id)
                    .values(
                        status="sent",
                        sent_at=utcnow(),
                        attempts=n.c.attempts + 1,
                        **({"body": REDACTED} if row.kind in SEALED_KINDS else {}),
                    )
                )
    return SendReport(sent=sent, failed=failed)


def _failed(engine: Engine, ids: list[int], error: str) -> None:
    n = s.notification
    with engine.begin() as conn:
        conn.execute(
            n.update()
            .where(n.c.id.in_(ids))
            .values(attempts=n.c.attempts + 1, last_error=error[:2000])
        )
