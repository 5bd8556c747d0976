"""The wallet's files: the holder key is encrypted at rest, and only the owner can read them."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pasa.passport._jose import b64url_decode
from pasa.passport.keys import IssuerKey
from pasa.passport.vc import EmploymentCredential, StatusReference, build_credential
from pasa.wallet.errors import WalletError
from pasa.wallet.store import KEY_FILE, WalletStore, held_from

PASS = "correct horse battery"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_file_holds_no_private_scalar_in_clear(tmp_path: Path) -> None:
    store = WalletStore.create(tmp_path / "w", PASS)
    pem = (tmp_path / "w" / KEY_FILE).read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    d = b64url_decode(store.holder_key.as_dict(private=True)["d"])
    assert d not in pem
    # Not even inside the PEM's base64: the DER under it is ciphertext too.
    assert d not in base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    with pytest.raises(TypeError):  # cryptography refuses to read it without a password
        serialization.load_pem_private_key(pem, None)
    assert "d" not in store.holder_jwk
    assert PASS not in repr(store)


def test_reopening_with_the_passphrase_gives_the_same_key(tmp_path: Path) -> None:
    first = WalletStore.create(tmp_path / "w", PASS)
    again = WalletStore.open(tmp_path / "w", PASS)
    assert again.holder_jwk == first.holder_jwk


def test_a_wrong_passphrase_is_a_specific_error(tmp_path: Path) -> None:
    WalletStore.create(tmp_path / "w", PASS)
    with pytest.raises(WalletError) as caught:
        WalletStore.open(tmp_path / "w", "not the passphrase")
    assert caught.value.code == "wrong_passphrase"
    assert "passphrase is wrong" in caught.value.message


def test_no_wallet_short_passphrase_and_existing_wallet_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WalletError) as none:
        WalletStore.open(tmp_path / "nothing", PASS)
    assert none.value.code == "no_wallet" and "pasa wallet init" in none.value.message
    with pytest.raises(WalletError) as short:
        WalletStore.create(tmp_path / "w", "short")
    assert short.value.code == "passphrase_too_short"
    WalletStore.create(tmp_path / "w", PASS)
    with pytest.raises(WalletError) as twice:
        WalletStore.create(tmp_path / "w", PASS)
    assert twice.value.code == "wallet_exists"


def test_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    store = WalletStore.create(tmp_path / "w", PASS)
    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
    issuer_key = IssuerKey.generate(now)
    claims = EmploymentCredential(
        given_name="Ada",
        family_name="Lovelace",
        assignment_number="A1-1",
        organisation_code="RXL",
        organisation_name="Blackpool",
        position_title="Staff Nurse",
        position_number="P1",
        staff_group="03",
        job_role="03001",
        occupation_code="N1A",
        assignment_category="substantive",
        start_date=dt.date(2025, 1, 6),
    )
    credential = build_credential(
        claims,
        issuer="https://pasa.test",
        key=issuer_key,
        holder_jwk=store.holder_jwk,
        status=StatusReference("https://pasa.test/passport/status/l1", 7),
        iat=now,
    )
    held = store.save(
        held_from(credential, configuration_id="employment", received_at=now, display={})
    )
    assert (held.issuer, held.status_uri, held.status_idx) == (
        "https://pasa.test",
        "https://pasa.test/passport/status/l1",
        7,
    )
    assert held.vct == EmploymentCredential.vct and held.expires_at > held.issued_at
    assert _mode(tmp_path / "w") == 0o700
    assert _mode(tmp_path / "w" / KEY_FILE) == 0o600
    (path,) = (tmp_path / "w" / "credentials").iterdir()
    assert _mode(path) == 0o600
    assert [h.id for h in WalletStore.open(tmp_path / "w", PASS).credentials()] == [held.id]
    assert store.get(held.id[:6]).credential == credential
    with pytest.raises(WalletError) as missing:
        store.get("zzz")
    assert missing.value.code == "no_such_credential"
