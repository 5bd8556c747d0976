"""Issuer signing keys: encryption at rest, no secrets in repr, rotation and publication."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from passport_support import AUD, NOW

from pasa.domain.errors import ConfigurationError
from pasa.passport.errors import VerificationError
from pasa.passport.keys import IssuerKey, KeyEncryptionKey, KeyRing, jwks_resolver
from pasa.passport.sdjwt import issue, present, verify

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_kek_comes_from_a_named_variable_and_is_never_echoed() -> None:
    value = KeyEncryptionKey.generate()
    kek = KeyEncryptionKey.from_env("MY_KEK", {"MY_KEK": value})
    assert value not in repr(kek)
    with pytest.raises(ConfigurationError) as missing:
        KeyEncryptionKey.from_env("MY_KEK", {})
    assert "MY_KEK" in str(missing.value)
    with pytest.raises(ConfigurationError) as short:
        KeyEncryptionKey.from_env("MY_KEK", {"MY_KEK": "c2VjcmV0"})
    assert "c2VjcmV0" not in str(short.value)


def test_a_padded_kek_as_pasted_by_an_operator_is_the_same_key() -> None:
    import base64
    import secrets

    raw = secrets.token_bytes(32)
    padded = base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    sealed = KeyEncryptionKey.from_env("K", {"K": padded}).encrypt(b"x", context="c")
    unpadded = padded.rstrip("=")
    assert KeyEncryptionKey.from_env("K", {"K": unpadded}).decrypt(sealed, context="c") == b"x"


def test_key_record_round_trip_keeps_the_private_key_encrypted() -> None:
    kek = KeyEncryptionKey.from_env("K", {"K": KeyEncryptionKey.generate()})
    key = IssuerKey.generate(T0)
    record = key.to_record(kek)
    d = key.private_key.as_dict(private=True)["d"]
    assert d not in json.dumps(record) and d not in repr(key)
    assert record["kid"] == key.kid == key.private_key.thumbprint()
    assert "d" not in record["public_jwk"]
    again = IssuerKey.from_record(record, kek)
    assert again.kid == key.kid
    assert again.private_key.as_dict(private=True)["d"] == d


def test_wrong_kek_or_swapped_ciphertext_is_refused() -> None:
    kek = KeyEncryptionKey(bytes(32))
    one, two = IssuerKey.generate(T0).to_record(kek), IssuerKey.generate(T0).to_record(kek)
    with pytest.raises(ConfigurationError):
        IssuerKey.from_record(one, KeyEncryptionKey(bytes([1]) * 32))
    swapped = {**one, "private_key_encrypted": two["private_key_encrypted"]}
    with pytest.raises(ConfigurationError):
        IssuerKey.from_record(swapped, kek)


def test_rotation_publishes_the_old_key_until_its_credentials_expire() -> None:
    ring = KeyRing.new(T0, grace=dt.timedelta(hours=1))
    old = ring.current
    old.note_signed(T0 + dt.timedelta(days=30))
    new = ring.rotate(T0 + dt.timedelta(days=1))
    assert new.kid != old.kid
    kids = [k["kid"] for k in ring.jwks(T0 + dt.timedelta(days=2))["keys"]]
    assert kids == [new.kid, old.kid]
    still = T0 + dt.timedelta(days=30, minutes=59)
    assert old.kid in [k["kid"] for k in ring.jwks(still)["keys"]]
    after = T0 + dt.timedelta(days=30, hours=1)
    assert [k["kid"] for k in ring.jwks(after)["keys"]] == [new.kid]
    assert ring.prune(after) == [old.kid] and ring.retired == []


def test_a_retired_key_that_signed_nothing_is_not_published() -> None:
    ring = KeyRing.new(T0)
    ring.rotate(T0)
    assert len(ring.jwks(T0)["keys"]) == 1


def test_ring_record_round_trip() -> None:
    kek = KeyEncryptionKey(bytes(range(32)))
    ring = KeyRing.new(T0)
    ring.current.note_signed(T0 + dt.timedelta(days=5))
    ring.rotate(T0 + dt.timedelta(days=1))
    again = KeyRing.from_record(json.loads(json.dumps(ring.to_record(kek))), kek)
    assert again.current.kid == ring.current.kid
    assert [k.kid for k in again.retired] == [k.kid for k in ring.retired]
    assert again.retired[0].signed_until == T0 + dt.timedelta(days=5)
    secret = again.current.private_key.as_dict(private=True)["d"]
    assert secret not in repr(again) and again.current.kid in repr(again)


def test_credentials_signed_before_rotation_still_verify_from_the_published_jwks() -> None:
    from joserfc.jwk import ECKey

    from pasa.passport._jose import public_jwk

    holder = ECKey.generate_key("P-256", private=True)
    issuer = "https://trust-a.nhs.uk/passport"
    now = dt.datetime.fromtimestamp(NOW, dt.UTC)
    ring = KeyRing.new(now - dt.timedelta(days=10))
    old = ring.current
    credential = issue(
        {"iss": issuer, "exp": NOW + 86400},
        issuer_key=old.private_key,
        kid=old.kid,
        holder_jwk=public_jwk(holder),
    )
    old.note_signed(now + dt.timedelta(days=1))
    ring.rotate(now - dt.timedelta(days=1))
    text = present(credential, holder_key=holder, audience=AUD, nonce="n", iat=NOW)
    metadata = ring.jwt_vc_issuer_metadata(issuer, now)
    assert metadata["issuer"] == issuer
    resolver = jwks_resolver({issuer: metadata["jwks"]})
    result = verify(text, issuer_keys=resolver, now=NOW, audience=AUD, nonce_check=lambda n: True)
    assert result.claims["iss"] == issuer
    other = jwks_resolver({"https://elsewhere.nhs.uk": metadata["jwks"]})
    with pytest.raises(VerificationError) as caught:
        verify(text, issuer_keys=other, now=NOW, audience=AUD, nonce_check=lambda n: True)
    assert caught.value.code == "issuer_key_unknown"
