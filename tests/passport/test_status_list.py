"""Token Status List: the draft's test vectors, the statuslist+jwt token and lookups."""

from __future__ import annotations

import zlib

import pytest
from passport_support import NOW, Keys

from pasa.passport._jose import b64url_encode, sign_jws
from pasa.passport.errors import VerificationError
from pasa.passport.status_list import (
    IndexAllocator,
    Status,
    StatusList,
    check_status,
    sign_status_list,
    status_at,
    verify_status_list,
)

URI = "https://trust-a.nhs.uk/passport/status/1"


def test_one_bit_vector_from_the_draft() -> None:
    values = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    status_list = StatusList(16, 1)
    for index, value in enumerate(values):
        status_list.set(index, value)
    assert status_list.to_bytes() == bytes([0xB9, 0xA3])  # LSB first within each byte
    assert status_list.encode() == {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}
    decoded = StatusList.decode({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})
    assert [decoded.get(i) for i in range(16)] == values


def test_two_bit_vector_from_the_draft() -> None:
    values = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    status_list = StatusList(12, 2)
    for index, value in enumerate(values):
        status_list.set(index, value)
    assert status_list.to_bytes() == bytes([0xC9, 0x44, 0xF9])
    assert status_list.encode() == {"bits": 2, "lst": "eNo76fITAAPfAgc"}


def test_set_rejects_values_and_indexes_that_do_not_fit() -> None:
    status_list = StatusList(8, 1)
    with pytest.raises(ValueError):
        status_list.set(0, Status.SUSPENDED)
    with pytest.raises(IndexError):
        status_list.set(8, 1)
    with pytest.raises(ValueError):
        StatusList(8, 4)


def test_allocator_hands_out_every_index_once_in_random_order() -> None:
    allocator = IndexAllocator(64)
    handed = [allocator.allocate() for _ in range(64)]
    assert sorted(handed) == list(range(64))
    assert handed != list(range(64))
    with pytest.raises(RuntimeError):
        allocator.allocate()


def test_allocator_never_reuses_persisted_indexes() -> None:
    allocator = IndexAllocator(10, used={0, 1, 2, 3, 4, 5, 6, 7})
    assert {allocator.allocate(), allocator.allocate()} == {8, 9}


def _token(keys: Keys, status_list: StatusList, **kwargs: object) -> str:
    return sign_status_list(status_list, uri=URI, key=keys.issuer, kid="s1", iat=NOW, **kwargs)  # type: ignore[arg-type]


def test_token_round_trip_and_lookup(keys: Keys) -> None:
    status_list = StatusList(1024, 2)
    status_list.set(7, Status.INVALID)
    status_list.set(9, Status.SUSPENDED)
    token = verify_status_list(
        _token(keys, status_list), key=keys.issuer, expected_uri=URI, now=NOW + 10
    )
    assert (token.uri, token.iat, token.exp, token.ttl) == (URI, NOW, NOW + 86400, 3600)
    assert token.status(7) == Status.INVALID and token.status(9) == Status.SUSPENDED
    assert token.status(8) == Status.VALID
    check_status(token, {"status_list": {"idx": 8, "uri": URI}})
    with pytest.raises(VerificationError) as revoked:
        check_status(token, {"status_list": {"idx": 7, "uri": URI}})
    assert revoked.value.code == "revoked"
    with pytest.raises(VerificationError) as suspended:
        check_status(token, {"status_list": {"idx": 9, "uri": URI}})
    assert suspended.value.code == "suspended"
    with pytest.raises(VerificationError) as other:
        check_status(token, {"status_list": {"idx": 9, "uri": URI + "/2"}})
    assert other.value.code == "status_reference_mismatch"


def _code(token: str, keys: Keys, **kwargs: object) -> str:
    kwargs.setdefault("key", keys.issuer)
    kwargs.setdefault("expected_uri", URI)
    kwargs.setdefault("now", NOW)
    with pytest.raises(VerificationError) as caught:
        verify_status_list(token, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_token_rejections(keys: Keys) -> None:
    good = _token(keys, StatusList(16, 1))
    assert _code(good, keys, key=keys.other) == "status_token_signature"
    assert _code(good, keys, expected_uri=URI + "x") == "status_token_sub"
    assert _code(good, keys, now=NOW + 86400 + 61) == "status_token_expired"
    assert _code(good, keys, now=NOW - 120) == "status_token_not_yet_valid"
    wrong_typ = sign_jws(
        {"alg": "ES256", "typ": "JWT"}, {"sub": URI, "iat": NOW, "status_list": {}}, keys.issuer
    )
    assert _code(wrong_typ, keys) == "status_token_typ"
    header = b64url_encode(b'{"alg":"none","typ":"statuslist+jwt"}')
    assert _code(f"{header}.{b64url_encode(b'{}')}.", keys) == "status_token_alg"
    assert _code("garbage", keys) == "status_token_malformed"


def test_out_of_range_index_is_a_rejection_not_valid(keys: Keys) -> None:
    token = verify_status_list(
        _token(keys, StatusList(16, 1)), key=keys.issuer, expected_uri=URI, now=NOW
    )
    for bad, code in (
        (16, "status_index_out_of_range"),
        (-1, "status_index_invalid"),
        ("3", "status_index_invalid"),
    ):
        with pytest.raises(VerificationError) as caught:
            status_at(token, bad)
        assert caught.value.code == code


def test_decompression_is_capped() -> None:
    bomb = b64url_encode(zlib.compress(bytes(10_000_000), 9))
    with pytest.raises(VerificationError) as caught:
        StatusList.decode({"bits": 1, "lst": bomb}, max_bytes=1_000_000)
    assert caught.value.code == "status_list_malformed"


@pytest.mark.parametrize(
    "claim",
    [
        None,
        {"bits": 3, "lst": "eNrbuRgAAhcBXQ"},
        {"bits": True, "lst": "eNrbuRgAAhcBXQ"},
        {"bits": 1, "lst": "not zlib"},
        {"bits": 1, "lst": b64url_encode(b"x\x9c")},
        {"bits": 1, "lst": b64url_encode(zlib.compress(b"\x01") + b"junk")},
        {"bits": 1, "lst": b64url_encode(zlib.compress(b""))},
    ],
)
def test_malformed_status_list_claims(claim: object) -> None:
    with pytest.raises(VerificationError) as caught:
        StatusList.decode(claim)
    assert caught.value.code == "status_list_malformed"
