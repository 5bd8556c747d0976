"""SD-JWT (RFC 9901): issuing, holder presentation and verification round trips."""

from __future__ import annotations

import hashlib
import json

from passport_support import AUD, KID, NOW, Keys, NonceStore, sample_claims

from pasa.passport._jose import b64url_decode, b64url_encode
from pasa.passport.sdjwt import (
    SD,
    SdJwt,
    VerificationPolicy,
    digest,
    held_disclosures,
    issue,
    make_disclosure,
    present,
    sd_hash,
    verify,
)


def _payload(jwt: str) -> dict:
    return json.loads(b64url_decode(jwt.split(".")[1]))


def _header(jwt: str) -> dict:
    return json.loads(b64url_decode(jwt.split(".")[0]))


def test_disclosure_digest_is_sha256_of_the_encoded_string() -> None:
    # RFC 9901 section 5.1 example: ["_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius"]
    encoded = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    assert digest(encoded) == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
    assert json.loads(b64url_decode(encoded)) == [
        "_26bc4LT-ac6q2KI6cBW5es",
        "family_name",
        "Möbius",
    ]


def test_issued_structure_follows_the_rfc(credential: SdJwt, keys: Keys) -> None:
    header, payload = _header(credential.jwt), _payload(credential.jwt)
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": KID}
    assert payload["_sd_alg"] == "sha-256"
    assert payload["cnf"] == {"jwk": keys.holder_jwk}
    assert "given_name" not in payload and "address" not in payload
    assert payload["_sd"] == sorted(payload["_sd"])
    # 3 top-level disclosures plus 0..3 decoys; array keeps its plain element in place.
    assert 3 <= len(payload["_sd"]) <= 6
    assert "cy" in payload["languages"]
    assert all(set(e) == {"..."} for e in payload["languages"] if e != "cy")
    assert len(credential.disclosures) == 7
    serialised = credential.serialize()
    assert serialised.endswith("~") and serialised.count("~") == 8
    for encoded in credential.disclosures:
        array = json.loads(b64url_decode(encoded))
        assert len(array) in (2, 3)
        assert len(b64url_decode(array[0])) == 16  # 128-bit salt


def test_salts_are_fresh_for_every_disclosure() -> None:
    salts = {make_disclosure("x", 1).salt for _ in range(200)}
    assert len(salts) == 200


def test_full_round_trip_reveals_everything(
    credential: SdJwt, keys: Keys, nonces: NonceStore
) -> None:
    everything = present(
        credential,
        holder_key=keys.holder,
        audience=AUD,
        nonce=nonces.new("n-1"),
        iat=NOW,
        select=lambda _: True,
    )
    result = verify(
        everything, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=nonces.consume
    )
    assert result.key_bound
    claims = result.claims
    assert claims["given_name"] == "Ada" and claims["family_name"] == "Lovelace"
    assert claims["address"] == {
        "street": "1 Hospital Road",
        "locality": "Leeds",
        "country": "GB",
    }
    assert claims["languages"] == ["en", "cy", "fr"]
    assert "_sd" not in json.dumps(claims) and "_sd_alg" not in claims
    assert result.kb_payload is not None and result.kb_payload["aud"] == AUD


def test_nothing_disclosed_hides_every_personal_claim(
    credential: SdJwt, keys: Keys, nonces: NonceStore
) -> None:
    bare = present(credential, holder_key=keys.holder, audience=AUD, nonce=nonces.new("n"), iat=NOW)
    result = verify(
        bare, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=nonces.consume
    )
    assert set(result.claims) == {"iss", "iat", "exp", "vct", "languages", "grade", "cnf"}
    assert result.claims["languages"] == ["cy"]
    assert result.disclosed == ()


def test_nested_claim_brings_its_parent_but_not_its_siblings(
    credential: SdJwt, keys: Keys, nonces: NonceStore
) -> None:
    text = present(
        credential,
        holder_key=keys.holder,
        audience=AUD,
        nonce=nonces.new("n"),
        iat=NOW,
        paths=[("address", "locality"), ("languages", 2)],
    )
    assert len(SdJwt.parse(text).disclosures) == 3
    result = verify(
        text, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=nonces.consume
    )
    assert result.claims["address"] == {"locality": "Leeds", "country": "GB"}
    assert result.claims["languages"] == ["cy", "fr"]
    assert "given_name" not in result.claims


def test_held_disclosures_name_the_path_of_each_claim(credential: SdJwt) -> None:
    paths = {h.path for h in held_disclosures(credential)}
    assert paths == {
        ("given_name",),
        ("family_name",),
        ("address",),
        ("address", "street"),
        ("address", "locality"),
        ("languages", 0),
        ("languages", 2),
    }


def test_kb_jwt_carries_sd_hash_over_the_presentation(
    credential: SdJwt, keys: Keys, nonces: NonceStore
) -> None:
    text = present(
        credential, holder_key=keys.holder, audience=AUD, nonce="abc", iat=NOW, paths=[("grade",)]
    )
    parts = SdJwt.parse(text)
    assert parts.kb_jwt is not None
    assert _header(parts.kb_jwt) == {"alg": "ES256", "typ": "kb+jwt"}
    kb = _payload(parts.kb_jwt)
    expected = b64url_encode(hashlib.sha256(parts.without_kb().encode()).digest())
    assert kb == {"iat": NOW, "aud": AUD, "nonce": "abc", "sd_hash": expected}
    assert sd_hash(parts.without_kb()) == expected


def test_plain_sd_jwt_without_key_binding_when_policy_allows(keys: Keys) -> None:
    plain = issue({"exp": NOW + 60, "a": SD(1)}, issuer_key=keys.issuer, kid="issuer-1", typ="x")
    policy = VerificationPolicy(typ="x", require_key_binding=False)
    text = present(plain, holder_key=None, select=lambda _: True)
    result = verify(text, issuer_keys=keys.resolver, now=NOW, policy=policy)
    assert result.claims == {"exp": NOW + 60, "a": 1}
    assert not result.key_bound


def test_issue_refuses_reserved_claim_names(keys: Keys) -> None:
    import pytest

    for bad in ({"_sd": [1]}, {"...": 1}, {"a": {"...": SD(1)}}, {"cnf": {}}, {"_sd_alg": "x"}):
        with pytest.raises(ValueError):
            issue(bad, issuer_key=keys.issuer)
    with pytest.raises(ValueError):
        issue({"a": [SD(SD(1))]}, issuer_key=keys.issuer)


def test_sample_claims_are_unchanged_by_issuing() -> None:
    first, second = sample_claims(), sample_claims()
    assert first == second
