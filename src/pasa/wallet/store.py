"""The wallet's files: the holder key encrypted at rest, and the credentials with metadata.

Layout of the wallet directory (``0700``; every file ``0600``)::

    holder-key.pem            the holder's P-256 private key, PKCS#8 PEM encrypted with the
                              passphrase (cryptography's BestAvailableEncryption)
    credentials/<id>.json     one held credential: the SD-JWT VC and what the wallet knows of it

The passphrase comes from ``PASA_WALLET_PASSPHRASE`` or a prompt; it is never stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from pasa.passport._jose import b64url_decode, json_loads, public_jwk
from pasa.wallet.errors import WalletError

DIR_ENV = "PASA_WALLET_DIR"
PASSPHRASE_ENV = "PASA_WALLET_PASSPHRASE"  # noqa: S105 (the variable's name)
KEY_FILE = "holder-key.pem"
MIN_PASSPHRASE = 8


def default_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".pasa-wallet")


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """A credential in the wallet. ``state``: valid / suspended / revoked / unknown, as last
    checked (``checked_at``); expiry is judged from ``expires_at`` at the time of asking."""

    id: str
    credential: str  # the SD-JWT VC as issued (every Disclosure)
    configuration_id: str
    issuer: str
    vct: str
    issued_at: str
    expires_at: str
    status_uri: str | None
    status_idx: int | None
    received_at: str
    state: str = "valid"
    checked_at: str | None = None
    display: dict[str, Any] = field(default_factory=dict)

    def expired(self, now: dt.datetime) -> bool:
        return dt.datetime.fromisoformat(self.expires_at) <= now

    def state_at(self, now: dt.datetime) -> str:
        if self.state in ("revoked", "suspended"):
            return self.state
        return "expired" if self.expired(now) else self.state

    def payload(self) -> dict[str, Any]:
        """The issuer-signed payload (not verified here: it was verified on receipt)."""
        body: dict[str, Any] = json_loads(
            b64url_decode(self.credential.split("~")[0].split(".")[1])
        )
        return body


def _utc(seconds: Any) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).isoformat()


def held_from(
    credential: str, *, configuration_id: str, received_at: dt.datetime, display: Mapping[str, Any]
) -> HeldCredential:
    """Metadata read from the credential's own (already verified) payload."""
    payload = json_loads(b64url_decode(credential.split("~")[0].split(".")[1]))
    entry = (payload.get("status") or {}).get("status_list") or {}
    return HeldCredential(
        id=str(uuid.uuid4()),
        credential=credential,
        configuration_id=configuration_id,
        issuer=str(payload["iss"]),
        vct=str(payload["vct"]),
        issued_at=_utc(payload["iat"]),
        expires_at=_utc(payload["exp"]),
        status_uri=entry.get("uri"),
        status_idx=entry.get("idx"),
        received_at=received_at.isoformat(),
        display=dict(display),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only, created 0600 (never briefly wider)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class WalletStore:
    """A wallet directory. Open with :meth:`create` (``pasa wallet init``) or :meth:`open`."""

    def __init__(self, root: Path, key: ECKey) -> None:
        self.root = root
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"WalletStore({str(self.root)!r})"

    @property
    def holder_key(self) -> ECKey:
        return self._key

    @property
    def holder_jwk(self) -> dict[str, Any]:
        return public_jwk(self._key)

    @classmethod
    def create(cls, root: Path, passphrase: str) -> WalletStore:
        if len(passphrase) < MIN_PASSPHRASE:
            raise WalletError(
                "passphrase_too_short",
                f"The wallet passphrase must be at least {MIN_PASSPHRASE} characters.",
            )
        if (root / KEY_FILE).exists():
            raise WalletError("wallet_exists", f"There is already a wallet in {root}.")
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root, 0o700)
        (root / "credentials").mkdir(exist_ok=True, mode=0o700)
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
        _write_private(root / KEY_FILE, pem)
        return cls(root, ECKey.import_key(private))

    @classmethod
    def open(cls, root: Path, passphrase: str) -> WalletStore:
        path = root / KEY_FILE
        if not path.exists():
            raise WalletError(
                "no_wallet", f"There is no wallet in {root}: run `pasa wallet init` first."
            )
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), passphrase.encode())
        except (ValueError, TypeError) as exc:
            # cryptography cannot tell a wrong passphrase from a damaged file; say both.
            raise WalletError(
                "wrong_passphrase",
                "The wallet passphrase is wrong (or the key file is damaged).",
            ) from exc
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, ec.SECP256R1
        ):
            raise WalletError("key_unsupported", "The wallet key is not a P-256 key.")
        return cls(root, ECKey.import_key(private))

    # --- credentials ----------------------------------------------------------------------

    def _dir(self) -> Path:
        path = self.root / "credentials"
        path.mkdir(exist_ok=True, mode=0o700)
        return path

    def save(self, held: HeldCredential) -> HeldCredential:
        _write_private(self._dir() / f"{held.id}.json", json.dumps(asdict(held), indent=2).encode())
        return held

    def credentials(self) -> list[HeldCredential]:
        """Every held credential, newest first."""
        found = []
        for path in self._dir().glob("*.json"):
            found.append(HeldCredential(**json.loads(path.read_text())))
        return sorted(found, key=lambda h: (h.received_at, h.id), reverse=True)

    def get(self, prefix: str) -> HeldCredential:
        """The credential whose id is (or starts with) ``prefix``."""
        matches = [h for h in self.credentials() if h.id.startswith(prefix)] if prefix else []
        if len(matches) != 1:
            what = "No" if not matches else "More than one"
            raise WalletError("no_such_credential", f"{what} held credential has id {prefix}.")
        return matches[0]

    def set_state(
        self, held: HeldCredential, state: str, checked_at: dt.datetime
    ) -> HeldCredential:
        return self.save(replace(held, state=state, checked_at=checked_at.isoformat()))
