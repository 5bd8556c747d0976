"""`pasa wallet`: the reference holder of the Digital Staff Passport, from a terminal.

The wallet directory is ``--wallet DIR``, else ``PASA_WALLET_DIR``, else ``~/.pasa-wallet``;
the passphrase ``PASA_WALLET_PASSPHRASE`` or a hidden prompt. Errors are one sentence and a
non-zero exit (:class:`~pasa.wallet.errors.WalletError` carries the specific reason).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pasa.passport.sdjwt import held_disclosures
from pasa.wallet import issuance, presentation, status
from pasa.wallet.errors import WalletError
from pasa.wallet.store import DIR_ENV, PASSPHRASE_ENV, WalletStore, default_dir

wallet_app = typer.Typer(
    help="A reference wallet: collect, list, check and present passport credentials.",
    no_args_is_help=True,
)

console = Console()
err = Console(stderr=True)

WalletOption = Annotated[
    Path | None,
    typer.Option("--wallet", help=f"Wallet directory (default ${DIR_ENV} or ~/.pasa-wallet)."),
]

_STYLE = {"valid": "green", "suspended": "yellow", "revoked": "red", "expired": "red"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _passphrase(*, confirm: bool = False) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    answer: str = typer.prompt("Wallet passphrase", hide_input=True, confirmation_prompt=confirm)
    return answer


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except WalletError as exc:
        err.print(f"[red]Error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(1) from None


def _open(wallet: Path | None) -> WalletStore:
    return WalletStore.open(wallet or default_dir(), _passphrase())


def _log(line: str) -> None:
    err.print(line)


@wallet_app.command("init")
def init(wallet: WalletOption = None) -> None:
    """Create a wallet: a new holder key, encrypted with your passphrase."""
    with _errors():
        root = wallet or default_dir()
        store = WalletStore.create(root, _passphrase(confirm=True))
        console.print(f"Wallet created in {store.root} (holder key encrypted at rest).")


@wallet_app.command("receive")
def receive(
    offer: Annotated[str, typer.Argument(help="openid-credential-offer://... or the https link.")],
    tx_code: Annotated[
        str | None, typer.Option("--tx-code", help="The code sent to you separately.")
    ] = None,
    wallet: WalletOption = None,
) -> None:
    """Collect the credentials a credential offer holds (OpenID4VCI)."""
    with _errors():
        store = _open(wallet)

        def ask(description: str) -> str:
            answer: str = typer.prompt(f"{description}\nTransaction code", hide_input=True)
            return answer

        held = issuance.receive(store, offer, tx_code=tx_code, ask_tx_code=ask, log=_log)
        console.print(f"Received {len(held)} credential(s).")


@wallet_app.command("list")
def list_credentials(
    wallet: WalletOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """The credentials held: type, issuer, status and expiry."""
    with _errors():
        store = _open(wallet)
        now = _now()
        held = store.credentials()
        if as_json:
            rows = [
                {
                    "id": h.id,
                    "vct": h.vct,
                    "issuer": h.issuer,
                    "status": h.state_at(now),
                    "expires": h.expires_at,
                }
                for h in held
            ]
            typer.echo(json.dumps(rows, indent=2))
            return
        if not held:
            console.print("The wallet holds no credentials yet: use `pasa wallet receive`.")
            return
        table = Table(title="Credentials held")
        for column in ("ID", "Type", "Issuer", "Status", "Expires", "Checked"):
            table.add_column(column)
        for h in held:
            state = h.state_at(now)
            table.add_row(
                h.id[:8],
                str(h.display.get("name") or h.vct),
                h.issuer,
                f"[{_STYLE.get(state, 'white')}]{state}[/]",
                h.expires_at[:10],
                (h.checked_at or h.received_at)[:16].replace("T", " "),
            )
        console.print(table)


@wallet_app.command("show")
def show(
    credential_id: Annotated[str, typer.Argument(metavar="ID", help="Its id (or first letters).")],
    wallet: WalletOption = None,
) -> None:
    """A credential's claims, marking which you can choose to disclose."""
    with _errors():
        held = _open(wallet).get(credential_id)
        console.print(f"[bold]{held.display.get('name') or held.vct}[/bold]  ({held.vct})")
        console.print(f"Issuer {held.issuer}; issued {held.issued_at}; expires {held.expires_at}")
        console.print(f"Status {held.state_at(_now())} (checked {held.checked_at or 'never'})")
        table = Table(title="Claims")
        table.add_column("Claim")
        table.add_column("Value")
        table.add_column("Disclosure")
        hidden = {"_sd", "_sd_alg", "cnf", "status"}
        for name, value in held.payload().items():
            if name not in hidden:
                table.add_row(name, str(value), "always shown")
        for item in held_disclosures(held.credential):
            value = item.disclosure.value
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != "_sd"} or "(object)"
            table.add_row(
                ".".join(map(str, item.path)), str(value), "[cyan]selectively disclosable[/]"
            )
        console.print(table)


@wallet_app.command("present")
def present(
    request: Annotated[str, typer.Argument(help="openid4vp://... from the verifier.")],
    yes: Annotated[bool, typer.Option("--yes", help="Consent without asking.")] = False,
    wallet: WalletOption = None,
) -> None:
    """Show a verifier what it asks for, with your consent (OpenID4VP)."""
    with _errors():
        store = _open(wallet)
        parsed = presentation.fetch_request(request)
        now = _now()
        matches = presentation.match(parsed, store.credentials(), now)
        console.print(f"[bold]{parsed.verifier}[/bold] asks for:")
        for m in matches:
            name = m.held.display.get("name") or m.held.vct
            console.print(f"  {name} from {m.held.issuer}, disclosing:")
            for path, value in m.revealed:
                console.print(f"    {path}: {value}")
        console.print("Nothing else from these credentials is disclosed.")
        if not yes and not typer.confirm("Share this with the verifier?", default=False):
            err.print("Nothing was shared.")
            raise typer.Exit(1)
        answer = presentation.respond(store, parsed, matches, now=now)
        console.print("The verifier accepted the presentation.")
        if isinstance(answer.get("redirect_uri"), str):
            console.print(f"Continue at {answer['redirect_uri']}")


@wallet_app.command("status")
def refresh_status(wallet: WalletOption = None) -> None:
    """Re-check every credential's status with its issuer's signed status list."""
    with _errors():
        results = status.refresh(_open(wallet), now=_now())
        if not results:
            console.print("The wallet holds no credentials.")
        problems = 0
        for held, problem in results:
            name: Any = held.display.get("name") or held.vct
            if problem:
                problems += 1
                err.print(f"{held.id[:8]} {name}: could not check ({problem})")
            else:
                console.print(f"{held.id[:8]} {name}: {held.state_at(_now())}")
        if problems:
            raise typer.Exit(1)
