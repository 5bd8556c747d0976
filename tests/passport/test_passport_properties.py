"""Hypothesis properties of the passport core: disclosure subsets, tamper evidence, status
lists and a small fuzz of the verifier."""

from __future__ import annotations

import contextlib
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from passport_support import AUD, KID, NOW, Keys, NonceStore

from pasa.passport._jose import b64url_decode
from pasa.passport.errors import VerificationError
from pasa.passport.sdjwt import SD, SdJwt, VerificationPolicy, issue, present, verify
from pasa.passport.status_list import StatusList

NAMES = ("given_name", "family_name", "birthdate", "nhs_number", "email", "phone")
PLAIN = {"iss": "https://trust-a.nhs.uk", "exp": NOW + 3600, "grade": "ST3"}
_CACHE: dict[str, SdJwt] = {}
NO_KB = VerificationPolicy(typ="dc+sd-jwt", require_key_binding=False)


def _flat(keys: Keys) -> SdJwt:
    if "flat" not in _CACHE:
        claims = {**PLAIN, **{name: SD(f"value-of-{name}") for name in NAMES}}
        _CACHE["flat"] = issue(
            claims, issuer_key=keys.issuer, holder_jwk=keys.holder_jwk, kid=KID, max_decoys=4
        )
    return _CACHE["flat"]


@settings(max_examples=30)
@given(chosen=st.sets(st.sampled_from(NAMES)))
def test_any_subset_verifies_and_reveals_exactly_it(keys: Keys, chosen: set[str]) -> None:
    nonces = NonceStore({"n"})
    text = present(
        _flat(keys),
        holder_key=keys.holder,
        audience=AUD,
        nonce="n",
        iat=NOW,
        paths=[(name,) for name in chosen],
    )
    result = verify(
        text, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=nonces.consume
    )
    expected = {**PLAIN, "cnf": {"jwk": keys.holder_jwk}}
    expected.update({name: f"value-of-{name}" for name in chosen})
    assert result.claims == expected
    assert set(result.disclosed) == {(name,) for name in chosen}


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~= "


@settings(max_examples=60)
@given(data=st.data())
def test_any_single_byte_change_is_rejected(keys: Keys, data: st.DataObject) -> None:
    original = present(_flat(keys), holder_key=None, select=lambda _: True)
    # Change one character inside the issuer JWT or one of the disclosures (not the final ~).
    position = data.draw(st.integers(0, len(original) - 2), label="position")
    replacement = data.draw(
        st.sampled_from(_ALPHABET).filter(lambda c: c != original[position]), label="char"
    )
    mutated = original[:position] + replacement + original[position + 1 :]
    try:
        verify(mutated, issuer_keys=keys.resolver, now=NOW, policy=NO_KB)
    except VerificationError:
        return
    raise AssertionError(f"a change at {position} was accepted")


@settings(max_examples=40)
@given(
    bits=st.sampled_from([1, 2]),
    size=st.integers(1, 3000),
    writes=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3)), max_size=60),
)
def test_status_list_set_get_round_trip(
    bits: int, size: int, writes: list[tuple[int, int]]
) -> None:
    status_list = StatusList(size, bits)
    model = [0] * size
    for raw_index, raw_value in writes:
        index, value = raw_index % size, raw_value % (1 << bits)
        status_list.set(index, value)
        model[index] = value
    assert [status_list.get(i) for i in range(size)] == model
    decoded = StatusList.decode(status_list.encode())
    assert decoded.bits == bits and decoded.to_bytes() == status_list.to_bytes()
    assert [decoded.get(i) for i in range(size)] == model


@settings(max_examples=40)
@given(payload=st.binary(min_size=1, max_size=4096), bits=st.sampled_from([1, 2]))
def test_status_list_compression_round_trip(payload: bytes, bits: int) -> None:
    encoded = StatusList(len(payload) * 8 // bits, bits, data=payload).encode()
    assert zlib.decompress(b64url_decode(encoded["lst"])) == payload
    assert StatusList.decode(encoded).to_bytes() == payload


_TOKENISH = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60
        ),
        st.sampled_from(["~", ".", "eyJhbGciOiJFUzI1NiJ9", "eyJ9", "W10", "WyJhIiwiYiJd", "=="]),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=200)
@given(text=st.one_of(st.text(), _TOKENISH))
def test_verify_only_ever_raises_verification_error(keys: Keys, text: str) -> None:
    with contextlib.suppress(VerificationError):
        verify(text, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=lambda n: True)


@settings(max_examples=100)
@given(data=st.data())
def test_verify_survives_structured_garbage(keys: Keys, data: st.DataObject) -> None:
    """Mutations of a real presentation: drop, duplicate and splice its ~-separated parts."""
    real = present(
        _flat(keys), holder_key=keys.holder, audience=AUD, nonce="n", iat=NOW, select=lambda _: True
    )
    parts = real.split("~")
    picked = data.draw(st.lists(st.sampled_from([*parts, "", "x", "W10"]), max_size=10))
    text = "~".join(picked)
    with contextlib.suppress(VerificationError):
        verify(text, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=lambda n: True)
