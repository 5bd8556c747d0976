"""OpenID4VP core (pure): DCQL, the request URI, the direct_post parser, query matching."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from verifier_support import (
    CLIENT_ID,
    EMPLOYMENT,
    IDENTITY,
    ISSUER,
    NOW,
    RESPONSE_URI,
    World,
    form,
)

from pasa.passport.errors import VerificationError
from pasa.passport.openid4vp import (
    QUERIES,
    ResponseError,
    dcql_query,
    parse_response,
    request_uri,
)
from pasa.passport.sdjwt import held_disclosures, present
from pasa.passport.trust import TrustedIssuer, TrustRegistry, check_issuer_identifier, vct_of


def test_dcql_asks_only_for_what_pre_provisioning_needs() -> None:
    query = dcql_query(["employment", "identity"])
    by_id = {c["id"]: c for c in query["credentials"]}
    assert set(by_id) == {"employment", "identity"}
    employment = by_id["employment"]
    assert employment["format"] == "dc+sd-jwt"
    assert employment["meta"] == {"vct_values": ["urn:nhs:pasa:passport:employment:1"]}
    paths = {tuple(c["path"]) for c in employment["claims"]}
    assert ("organisation_code",) in paths and ("job_role",) in paths
    assert ("start_date",) in paths and ("given_name",) in paths
    identity_paths = {tuple(c["path"]) for c in by_id["identity"]["claims"]}
    # Data minimisation: the NHS number is never requested.
    assert ("nhs_number",) not in identity_paths and ("birthdate",) in identity_paths
    with pytest.raises(ValueError, match="unknown credential queries"):
        dcql_query(["dbs_everything"])


def test_request_uri_follows_the_agreed_conventions() -> None:
    uri = request_uri(
        response_uri=RESPONSE_URI,
        nonce="abc",
        state="s1",
        query_ids=["employment"],
        client_name="Trust B",
    )
    assert uri.startswith("openid4vp://?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
    assert params["client_id"] == "redirect_uri:" + RESPONSE_URI
    assert params["client_id"].removeprefix("redirect_uri:") == params["response_uri"]
    assert params["response_type"] == "vp_token"
    assert params["response_mode"] == "direct_post"
    assert (params["nonce"], params["state"]) == ("abc", "s1")
    assert json.loads(params["dcql_query"]) == dcql_query(["employment"])
    meta = json.loads(params["client_metadata"])
    assert meta["client_name"] == "Trust B"
    assert meta["vp_formats_supported"]["dc+sd-jwt"]["kb-jwt_alg_values"] == ["ES256"]


def test_parser_accepts_a_well_formed_response() -> None:
    parsed = parse_response(form({"employment": ["a~b~"]}, state="xyz"))
    assert parsed.state == "xyz" and parsed.vp_token == {"employment": "a~b~"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "state_missing"),
        (b"vp_token=%7B%7D", "state_missing"),
        (b"state=s", "vp_token_missing"),
        (b"state=s&vp_token=not-json", "vp_token_malformed"),
        (b"state=s&vp_token=%5B%5D", "vp_token_malformed"),
        (b"state=s&vp_token=%7B%22e%22%3A%22x%22%7D", "vp_token_malformed"),
        (b"state=s&vp_token=%7B%22e%22%3A%5B%22a%22%2C%22b%22%5D%7D", "vp_token_malformed"),
        (b"state=s&state=t&vp_token=%7B%7D", "parameter_repeated"),
        (b"state=s&error=access_denied", "wallet_error"),
        (b"\xff\xfe", "response_malformed"),
        (b"state=" + b"x" * 300_000, "response_too_large"),
    ],
)
def test_parser_refuses_with_a_specific_reason(body: bytes, code: str) -> None:
    with pytest.raises(ResponseError) as info:
        parse_response(body)
    assert info.value.code == code


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_parser_never_crashes(body: bytes) -> None:
    try:
        parsed = parse_response(body)
    except ResponseError as exc:
        assert exc.code and exc.message
    else:
        assert parsed.state and all(isinstance(v, str) and v for v in parsed.vp_token.values())


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_parser_never_crashes_on_any_json_vp_token(token: object) -> None:
    try:
        parse_response(form(json.dumps(token)))
    except ResponseError as exc:
        assert exc.code.startswith("vp_token")


def test_a_selectively_disclosed_presentation_verifies_to_the_asked_claims() -> None:
    world = World()
    credential, _ = world.credential()
    presentation = world.present(credential)
    # Only the asked disclosable claims travel (names, ESR assignment number); plain claims
    # such as the organisation are always visible.
    disclosed = {d.path for d in held_disclosures(presentation.rsplit("~", 1)[0] + "~")}
    assert disclosed == {("given_name",), ("family_name",), ("assignment_number",)}
    verified = world.verify({"employment": presentation})
    claims = verified.claims("employment")
    assert claims["organisation_code"] == "RXL" and claims["given_name"] == "Ada"
    relied = verified.relied_on()["employment"]
    assert relied["issuer"] == ISSUER and "organisation_code" in relied["claims"]
    assert "Ada" not in json.dumps(relied)  # the record names claims, never their values


def test_a_presentation_missing_an_asked_claim_is_refused() -> None:
    world = World()
    credential, _ = world.credential()
    bare = present(
        credential,
        holder_key=world.holder,
        audience=CLIENT_ID,
        nonce=world.nonce,
        iat=NOW,
        paths=[("given_name",)],
    )
    with pytest.raises(VerificationError) as info:
        world.verify({"employment": bare})
    assert info.value.code == "claims_missing"


def test_both_queries_are_required_and_answered_each_by_its_type() -> None:
    world = World()
    employment, _ = world.credential(EMPLOYMENT)
    identity, _ = world.credential(IDENTITY)
    both = world.verify(
        {"employment": world.present(employment), "identity": world.present(identity, "identity")},
        ["employment", "identity"],
    )
    assert both.claims("identity")["birthdate"] == "1990-12-10"
    other = World()
    employment, _ = other.credential(EMPLOYMENT)
    with pytest.raises(VerificationError) as info:
        other.verify({"employment": other.present(employment)}, ["employment", "identity"])
    assert info.value.code == "credential_missing"
    swapped = World()
    identity, _ = swapped.credential(IDENTITY)
    with pytest.raises(VerificationError) as info:
        swapped.verify({"employment": swapped.present(identity, "identity")})
    assert info.value.code == "vct_unexpected"


def test_trust_registry_rules() -> None:
    registry = TrustRegistry([TrustedIssuer(ISSUER, "RXL", vct_of("employment"))])
    registry.check(ISSUER, vct_of("employment"))
    with pytest.raises(VerificationError) as info:
        registry.check(ISSUER, vct_of("dbs"))
    assert info.value.code == "issuer_not_trusted_for_type"
    with pytest.raises(VerificationError) as info:
        registry.check("https://elsewhere.example", vct_of("employment"))
    assert info.value.code == "issuer_not_trusted"
    with pytest.raises(ValueError, match="unknown credential type"):
        vct_of("passport_photo")
    with pytest.raises(ValueError, match="https"):
        check_issuer_identifier("http://trust-a.nhs.uk")
    with pytest.raises(ValueError, match="https"):
        check_issuer_identifier("http://127.0.0.1:8000")
    assert check_issuer_identifier("http://127.0.0.1:8000/", allow_loopback_http=True) == (
        "http://127.0.0.1:8000"
    )
    with pytest.raises(ValueError, match="ODS"):
        TrustedIssuer(ISSUER, "not an ods", vct_of("employment"))
    assert set(QUERIES) >= {"employment", "identity", "professional_registration"}
