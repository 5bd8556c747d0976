"""Every way an SD-JWT presentation is refused, each with its own reason code."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from passport_support import AUD, KID, NOW, Keys, NonceStore

from pasa.passport._jose import b64url_decode, b64url_encode, json_dumps, sign_jws
from pasa.passport.errors import VerificationError
from pasa.passport.sdjwt import (
    SD,
    SdJwt,
    VerificationPolicy,
    issue,
    make_disclosure,
    present,
    sd_hash,
    verify,
)


def _reject(text: str, keys: Keys, nonces: NonceStore | None = None, **kwargs: Any) -> str:
    nonces = nonces or NonceStore({"n"})
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("audience", AUD)
    with pytest.raises(VerificationError) as caught:
        verify(text, issuer_keys=keys.resolver, nonce_check=nonces.consume, **kwargs)
    assert caught.value.message.endswith(".")
    return caught.value.code


def _kb(keys: Keys, without_kb: str, **override: Any) -> str:
    payload = {"iat": NOW, "aud": AUD, "nonce": "n", "sd_hash": sd_hash(without_kb)}
    payload.update(override.pop("payload", {}))
    header = {"alg": "ES256", "typ": "kb+jwt", **override.pop("header", {})}
    return sign_jws(header, payload, override.pop("key", keys.holder))


def _signed(keys: Keys, payload: dict[str, Any], disclosures: list[str], **header: Any) -> str:
    """A key-bound presentation over an issuer JWT with exactly this payload."""
    payload = {"exp": NOW + 600, "cnf": {"jwk": keys.holder_jwk}, **payload}
    jwt = sign_jws({"alg": "ES256", "typ": "dc+sd-jwt", "kid": KID, **header}, payload, keys.issuer)
    without = SdJwt(jwt, tuple(disclosures)).without_kb()
    return without + _kb(keys, without)


def _unsigned_jwt(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    return ".".join(
        [
            b64url_encode(json_dumps(header)),
            b64url_encode(json_dumps(payload)),
            b64url_encode(signature),
        ]
    )


def _bind(keys: Keys, sd_jwt: SdJwt) -> str:
    """Exactly these disclosures plus a valid KB-JWT (present() itself refuses bad input)."""
    return sd_jwt.without_kb() + _kb(keys, sd_jwt.without_kb())


def _present_all(credential: SdJwt, keys: Keys, **kwargs: Any) -> str:
    kwargs.setdefault("iat", NOW)
    return present(
        credential, holder_key=keys.holder, audience=AUD, nonce="n", select=lambda _: True, **kwargs
    )


# ---------------------------------------------------------------- issuer-signed JWT


def test_alg_none_is_refused(keys: Keys) -> None:
    jwt = _unsigned_jwt({"alg": "none", "typ": "dc+sd-jwt", "kid": KID}, {"exp": NOW + 60}, b"")
    assert _reject(jwt + "~", keys) == "jwt_alg"


def test_hs256_with_the_public_key_as_secret_is_refused(keys: Keys) -> None:
    header = {"alg": "HS256", "typ": "dc+sd-jwt", "kid": KID}
    signing_input = (
        f"{b64url_encode(json_dumps(header))}.{b64url_encode(json_dumps({'exp': NOW + 60}))}"
    )
    secret = json_dumps(keys.issuer.as_dict(private=False))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert _reject(f"{signing_input}.{b64url_encode(mac)}~", keys) == "jwt_alg"


def test_wrong_typ_is_refused(keys: Keys) -> None:
    legacy = issue({"exp": NOW + 60}, issuer_key=keys.issuer, kid=KID, typ="vc+sd-jwt")
    assert _reject(legacy.serialize(), keys) == "jwt_typ"
    untyped = _signed(keys, {}, [], typ="JWT")
    assert _reject(untyped, keys) == "jwt_typ"


def test_bad_signature_is_refused(keys: Keys) -> None:
    forged = issue({"exp": NOW + 60}, issuer_key=keys.other, kid=KID, holder_jwk=keys.holder_jwk)
    assert _reject(_present_all(forged, keys), keys) == "jwt_signature"


def test_altered_payload_is_refused(credential: SdJwt, keys: Keys) -> None:
    header, payload, signature = credential.jwt.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["grade"] = "Consultant"
    jwt = ".".join([header, b64url_encode(json_dumps(claims)), signature])
    altered = SdJwt(jwt, credential.disclosures)
    assert _reject(_bind(keys, altered), keys) == "jwt_signature"


def test_unknown_issuer_key_is_refused(keys: Keys) -> None:
    stranger = issue({"exp": NOW + 60}, issuer_key=keys.other, kid="someone-else")
    assert _reject(stranger.serialize(), keys) == "issuer_key_unknown"


def test_unsupported_sd_alg_is_refused(keys: Keys) -> None:
    assert _reject(_signed(keys, {"_sd_alg": "md5"}, []), keys) == "sd_alg_unsupported"


def test_expired_credential_is_refused_beyond_the_leeway(keys: Keys) -> None:
    text = _signed(keys, {"exp": NOW - 61}, [])
    assert _reject(text, keys) == "expired"
    within = _signed(keys, {"exp": NOW - 30}, [])
    verify(within, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=lambda n: True)


def test_not_yet_valid_credential_is_refused(keys: Keys) -> None:
    assert _reject(_signed(keys, {"nbf": NOW + 120}, []), keys) == "not_yet_valid"


def test_credential_without_exp_is_refused_by_policy(keys: Keys) -> None:
    jwt = sign_jws(
        {"alg": "ES256", "typ": "dc+sd-jwt", "kid": KID},
        {"cnf": {"jwk": keys.holder_jwk}},
        keys.issuer,
    )
    assert _reject(jwt + "~", keys) == "missing_claim"


def test_malformed_input_is_refused(keys: Keys) -> None:
    assert _reject("", keys) == "malformed"
    assert _reject("no-tilde-at-all", keys) == "malformed"
    assert _reject("a.b.c~~", keys) == "malformed"
    assert _reject("a.b~", keys) == "jwt_malformed"
    assert _reject("é~", keys) == "malformed"


# ---------------------------------------------------------------- disclosures


def test_tampered_disclosure_is_refused(credential: SdJwt, keys: Keys) -> None:
    first = credential.disclosures[0]
    salt, name, _value = json.loads(b64url_decode(first))
    tampered = b64url_encode(json_dumps([salt, name, "Mallory"]))
    altered = SdJwt(credential.jwt, (tampered, *credential.disclosures[1:]))
    assert _reject(_bind(keys, altered), keys) == "disclosure_unreferenced"


def test_corrupted_disclosure_is_refused(credential: SdJwt, keys: Keys) -> None:
    broken = SdJwt(credential.jwt, ("!!" + credential.disclosures[0][2:],))
    assert _reject(broken.serialize() + "x", keys) == "disclosure_malformed"
    wrong_arity = b64url_encode(json_dumps(["salt", "a", 1, 2]))
    assert _reject(_signed(keys, {}, [wrong_arity]), keys) == "disclosure_malformed"


def test_duplicated_disclosure_is_refused(credential: SdJwt, keys: Keys) -> None:
    doubled = SdJwt(credential.jwt, (*credential.disclosures, credential.disclosures[0]))
    assert _reject(_bind(keys, doubled), keys) == "disclosure_duplicate"


def test_disclosure_not_referenced_by_any_digest_is_refused(credential: SdJwt, keys: Keys) -> None:
    extra = make_disclosure("given_name", "Eve").encoded
    injected = SdJwt(credential.jwt, (*credential.disclosures[1:], extra))
    assert _reject(_bind(keys, injected), keys) == "disclosure_unreferenced"


def test_duplicate_digests_are_refused(keys: Keys) -> None:
    d = make_disclosure("given_name", "Ada")
    text = _signed(keys, {"_sd": [d.digest, d.digest]}, [d.encoded])
    assert _reject(text, keys) == "digest_duplicate"
    decoy = b64url_encode(hashlib.sha256(b"decoy").digest())
    nested = _signed(keys, {"_sd": [decoy], "list": [{"...": decoy}]}, [])
    assert _reject(nested, keys) == "digest_duplicate"


def test_disclosure_named_sd_or_ellipsis_is_refused(keys: Keys) -> None:
    for name in ("_sd", "..."):
        bad = b64url_encode(json_dumps(["c2FsdHNhbHRzYWx0", name, ["x"]]))
        digest = b64url_encode(hashlib.sha256(bad.encode()).digest())
        assert _reject(_signed(keys, {"_sd": [digest]}, [bad]), keys) == "sd_reserved_name"


def test_sd_that_is_not_an_array_of_digests_is_refused(keys: Keys) -> None:
    assert _reject(_signed(keys, {"_sd": "abc"}, []), keys) == "sd_misuse"
    assert _reject(_signed(keys, {"_sd": [1, 2]}, []), keys) == "sd_misuse"


def test_ellipsis_misuse_is_refused(keys: Keys) -> None:
    element = make_disclosure(None, "en")
    member = make_disclosure("given_name", "Ada")
    wrong_place = _signed(keys, {"_sd": [element.digest]}, [element.encoded])
    assert _reject(wrong_place, keys) == "sd_misuse"
    wrong_kind = _signed(keys, {"list": [{"...": member.digest}]}, [member.encoded])
    assert _reject(wrong_kind, keys) == "sd_misuse"
    extra_key = _signed(keys, {"list": [{"...": element.digest, "x": 1}]}, [element.encoded])
    assert _reject(extra_key, keys) == "sd_misuse"
    bare_key = _signed(keys, {"obj": {"...": "abc"}}, [])
    assert _reject(bare_key, keys) == "sd_misuse"


def test_disclosed_claim_colliding_with_a_plain_claim_is_refused(keys: Keys) -> None:
    d = make_disclosure("grade", "Consultant")
    assert _reject(_signed(keys, {"grade": "FY1", "_sd": [d.digest]}, [d.encoded]), keys) == (
        "claim_collision"
    )


def test_claim_that_must_stay_plain_is_refused_when_disclosable(keys: Keys) -> None:
    sneaky = issue(
        {"exp": NOW + 60, "vct": SD("urn:x")},
        issuer_key=keys.issuer,
        kid=KID,
        holder_jwk=keys.holder_jwk,
    )
    policy = VerificationPolicy(not_disclosable=frozenset({"vct"}))
    assert _reject(_present_all(sneaky, keys), keys, policy=policy) == "claim_not_disclosable"


# ---------------------------------------------------------------- key binding


def test_missing_kb_jwt_is_refused_when_required(credential: SdJwt, keys: Keys) -> None:
    assert _reject(present(credential, holder_key=None), keys) == "kb_missing"


def test_missing_cnf_is_refused_when_binding_required(keys: Keys) -> None:
    unbound = issue({"exp": NOW + 60}, issuer_key=keys.issuer, kid=KID)
    text = unbound.serialize() + _kb(keys, unbound.serialize())
    assert _reject(text, keys) == "cnf_missing"


def test_kb_jwt_signed_by_another_key_is_refused(credential: SdJwt, keys: Keys) -> None:
    text = present(credential, holder_key=keys.other, audience=AUD, nonce="n", iat=NOW)
    assert _reject(text, keys) == "kb_signature"


def test_kb_jwt_wrong_typ_is_refused(credential: SdJwt, keys: Keys) -> None:
    without = credential.without_kb()
    assert _reject(without + _kb(keys, without, header={"typ": "JWT"}), keys) == "kb_typ"


def test_kb_jwt_alg_none_is_refused(credential: SdJwt, keys: Keys) -> None:
    without = credential.without_kb()
    kb = _unsigned_jwt(
        {"alg": "none", "typ": "kb+jwt"},
        {"iat": NOW, "aud": AUD, "nonce": "n", "sd_hash": sd_hash(without)},
        b"",
    )
    assert _reject(without + kb, keys) == "kb_alg"


def test_kb_jwt_for_another_audience_is_refused(credential: SdJwt, keys: Keys) -> None:
    text = present(
        credential, holder_key=keys.holder, audience="x509_san_dns:evil.example", nonce="n", iat=NOW
    )
    assert _reject(text, keys) == "kb_aud"


def test_kb_jwt_with_an_unknown_nonce_is_refused(credential: SdJwt, keys: Keys) -> None:
    text = present(credential, holder_key=keys.holder, audience=AUD, nonce="guess", iat=NOW)
    assert _reject(text, keys, NonceStore({"n"})) == "kb_nonce"


def test_replayed_nonce_is_refused(credential: SdJwt, keys: Keys) -> None:
    nonces = NonceStore({"n"})
    text = _present_all(credential, keys)
    verify(text, issuer_keys=keys.resolver, now=NOW, audience=AUD, nonce_check=nonces.consume)
    assert _reject(text, keys, nonces) == "kb_nonce"


def test_failed_presentation_does_not_burn_the_nonce(credential: SdJwt, keys: Keys) -> None:
    nonces = NonceStore({"n"})
    wrong_aud = present(credential, holder_key=keys.holder, audience="other", nonce="n", iat=NOW)
    assert _reject(wrong_aud, keys, nonces) == "kb_aud"
    assert nonces.live == {"n"}


def test_bad_sd_hash_is_refused(credential: SdJwt, keys: Keys) -> None:
    text = _present_all(credential, keys)
    parts = SdJwt.parse(text)
    fewer = SdJwt(parts.jwt, parts.disclosures[1:], parts.kb_jwt)  # drop one, keep old KB-JWT
    assert _reject(fewer.serialize(), keys) == "kb_sd_hash"


def test_kb_jwt_too_old_is_refused(credential: SdJwt, keys: Keys) -> None:
    text = _present_all(credential, keys, iat=NOW - 301 - 60)
    assert _reject(text, keys) == "kb_too_old"


def test_kb_jwt_from_the_future_is_refused(credential: SdJwt, keys: Keys) -> None:
    text = _present_all(credential, keys, iat=NOW + 120)
    assert _reject(text, keys) == "kb_iat_future"


def test_kb_jwt_missing_a_required_claim_is_refused(credential: SdJwt, keys: Keys) -> None:
    without = credential.without_kb()
    kb = sign_jws({"alg": "ES256", "typ": "kb+jwt"}, {"iat": NOW, "aud": AUD}, keys.holder)
    assert _reject(without + kb, keys) == "kb_malformed"
