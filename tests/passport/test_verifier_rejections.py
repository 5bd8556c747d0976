"""Every way the verifier pipeline refuses a presentation, each with its specific reason.

The presentations are made as a wallet would (``sdjwt.present`` with a KB-JWT over our client
id and the session nonce) and then altered the way an attacker would alter them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest
from joserfc.jwk import ECKey
from verifier_support import CLIENT_ID, IDENTITY, NOW, World

from pasa.passport._jose import b64url_decode, b64url_encode, json_dumps, sign_jws
from pasa.passport.errors import VerificationError
from pasa.passport.keys import IssuerKey
from pasa.passport.sdjwt import SdJwt, make_disclosure, sd_hash
from pasa.passport.status_list import Status
from pasa.passport.trust import TrustedIssuer, TrustRegistry
from pasa.passport.vc import EmploymentCredential


def _reason(world: World, presentation: str, query_id: str = "employment") -> str:
    with pytest.raises(VerificationError) as caught:
        world.verify({query_id: presentation}, [query_id])
    return caught.value.code


def _rebind(world: World, without_kb: str) -> str:
    """A fresh, valid KB-JWT over exactly ``without_kb`` (an attacker holding the key)."""
    payload = {
        "iat": int(NOW.timestamp()),
        "aud": CLIENT_ID,
        "nonce": world.nonce,
        "sd_hash": sd_hash(without_kb),
    }
    return without_kb + sign_jws({"alg": "ES256", "typ": "kb+jwt"}, payload, world.holder)


def _reheader(jwt: str, alg: str, signature: bytes) -> str:
    header, payload, _ = jwt.split(".")
    fields = json.loads(b64url_decode(header))
    fields["alg"] = alg
    return ".".join([b64url_encode(json_dumps(fields)), payload, b64url_encode(signature)])


def _parts(world: World) -> tuple[World, SdJwt]:
    credential, _ = world.credential()
    presented = SdJwt.parse(world.present(credential))
    return world, presented


def test_the_untouched_presentation_is_accepted() -> None:
    world, presented = _parts(World())
    assert world.verify({"employment": presented.serialize()}).claims("employment")


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_none_and_hs256_are_refused(alg: str) -> None:
    world, presented = _parts(World())
    signing_input = ".".join(presented.jwt.split(".")[:2]).encode()
    # HS256 keyed with the issuer's *public* key: the classic algorithm-confusion attack.
    secret = json_dumps(world.key.public_jwk())
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest() if alg == "HS256" else b""
    jwt = _reheader(presented.jwt, alg, mac)
    forged = _rebind(world, SdJwt(jwt, presented.disclosures).without_kb())
    assert _reason(world, forged) == "jwt_alg"


def test_a_tampered_disclosure_is_refused() -> None:
    world, presented = _parts(World())
    salt, name, _ = json.loads(b64url_decode(presented.disclosures[0]))
    tampered = make_disclosure(name, "Mallory", salt=salt).encoded
    rest = presented.disclosures[1:]
    assert (
        _reason(world, _rebind(world, SdJwt(presented.jwt, (tampered, *rest)).without_kb()))
        == "disclosure_unreferenced"
    )


def test_a_duplicated_disclosure_is_refused() -> None:
    world, presented = _parts(World())
    doubled = (*presented.disclosures, presented.disclosures[0])
    assert _reason(world, _rebind(world, SdJwt(presented.jwt, doubled).without_kb())) == (
        "disclosure_duplicate"
    )


def test_an_unreferenced_disclosure_is_refused() -> None:
    world, presented = _parts(World())
    injected = make_disclosure("registration_number", "12A3456B").encoded
    extra = (*presented.disclosures, injected)
    assert _reason(world, _rebind(world, SdJwt(presented.jwt, extra).without_kb())) == (
        "disclosure_unreferenced"
    )


def test_a_replayed_nonce_is_refused() -> None:
    world = World()
    credential, _ = world.credential()
    presentation = world.present(credential)
    world.verify({"employment": presentation})  # accepted once: the session is now used
    assert _reason(world, presentation) == "kb_nonce"
    # ... and a presentation made for another session's nonce is refused here too.
    fresh = World()
    credential, _ = fresh.credential()
    assert _reason(fresh, fresh.present(credential, nonce="another-sessions-nonce")) == ("kb_nonce")


def test_a_wrong_audience_is_refused() -> None:
    world = World()
    credential, _ = world.credential()
    other = "redirect_uri:https://evil.example/passport/verifier/response"
    assert _reason(world, world.present(credential, aud=other)) == "kb_aud"
    # The bare response URI without the client identifier prefix is a different audience.
    bare = CLIENT_ID.removeprefix("redirect_uri:")
    assert _reason(world, world.present(credential, aud=bare)) == "kb_aud"


def test_an_expired_credential_is_refused() -> None:
    world = World()
    credential, _ = world.credential(iat=NOW - dt.timedelta(days=366))
    assert _reason(world, world.present(credential)) == "expired"


@pytest.mark.parametrize(
    ("status", "code"), [(Status.INVALID, "revoked"), (Status.SUSPENDED, "suspended")]
)
def test_revoked_and_suspended_credentials_are_refused(status: Status, code: str) -> None:
    world = World()
    credential, idx = world.credential()
    other, _ = world.credential()
    world.revoke(idx, status)
    assert _reason(world, world.present(credential)) == code
    # Its neighbour in the same list is unaffected.
    assert world.verify({"employment": world.present(other)}).claims("employment")


def test_an_issuer_not_trusted_for_that_type_is_refused() -> None:
    world = World(
        registry=TrustRegistry(
            [
                TrustedIssuer("https://trust-a.nhs.uk", "RXL", IDENTITY.vct),
            ]
        )
    )
    credential, _ = world.credential()
    assert _reason(world, world.present(credential)) == "issuer_not_trusted_for_type"
    untrusted = World(
        registry=TrustRegistry(
            [
                TrustedIssuer("https://trust-c.nhs.uk", "RX1", EmploymentCredential.vct),
            ]
        )
    )
    credential, _ = untrusted.credential()
    assert _reason(untrusted, untrusted.present(credential)) == "issuer_not_trusted"


def test_a_credential_signed_by_a_key_the_issuer_does_not_publish_is_refused() -> None:
    world = World()
    credential, _ = world.credential(key=IssuerKey.generate(NOW))
    assert _reason(world, world.present(credential)) == "issuer_key_unknown"


def test_a_kb_jwt_signed_by_another_key_is_refused() -> None:
    world = World()
    credential, _ = world.credential()
    thief = ECKey.generate_key("P-256", private=True)
    assert _reason(world, world.present(credential, holder=thief)) == "kb_signature"


def test_a_missing_kb_jwt_is_refused() -> None:
    world = World()
    credential, _ = world.credential()
    assert _reason(world, world.present(credential, kb=False)) == "kb_missing"


def test_a_dropped_disclosure_breaks_sd_hash() -> None:
    world, presented = _parts(World())
    kb = presented.kb_jwt
    assert kb is not None
    dropped = SdJwt(presented.jwt, presented.disclosures[1:]).without_kb() + kb
    assert _reason(world, dropped) == "kb_sd_hash"


def test_a_status_list_that_cannot_be_had_is_a_rejection() -> None:
    world = World()
    credential, _ = world.credential()

    def unavailable(uri: str, issuer: str) -> Any:
        raise VerificationError("fetch_failed", "The issuer could not be reached.")

    world.status_lookup = lambda: unavailable  # type: ignore[method-assign]
    assert _reason(world, world.present(credential)) == "fetch_failed"
