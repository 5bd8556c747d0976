"""OpenID4VP 1.0, holder side: read a verifier's request, match it, disclose only what it asks.

Supported, as agreed for the passport: an unsigned request passed by value in an
``openid4vp://`` URI (or an https link carrying the same parameters, or redirecting to one),
client identifier prefix ``redirect_uri:`` whose value must equal ``response_uri``,
``response_type=vp_token``, ``response_mode=direct_post`` and a DCQL query for ``dc+sd-jwt``
credentials. The presentation discloses exactly the claims the query names (plus the
disclosable objects that contain them), with a KB-JWT whose ``aud`` is the full client id and
whose ``nonce`` is the request's. Signed requests (``request_uri``, JAR) and ``credential_sets``
/ ``claim_sets`` are refused as unsupported rather than half-understood.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pasa.passport.sdjwt import HeldDisclosure, held_disclosures, present
from pasa.wallet import http as web
from pasa.wallet.errors import WalletError
from pasa.wallet.store import HeldCredential, WalletStore

SCHEME = "openid4vp"
CLIENT_ID_PREFIX = "redirect_uri:"
FORMAT = "dc+sd-jwt"
_ENVELOPE = frozenset({"_sd", "_sd_alg", "...", "cnf", "status"})

Pattern = tuple[str | int | None, ...]  # a DCQL claims path; None = every array element
Concrete = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class CredentialRequest:
    """One DCQL Credential Query as the wallet understands it."""

    id: str
    vct_values: tuple[str, ...]
    paths: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True)
class PresentationRequest:
    client_id: str
    response_uri: str
    nonce: str
    state: str
    client_name: str | None
    queries: tuple[CredentialRequest, ...]

    @property
    def verifier(self) -> str:
        """How to name the verifier to a person: its own name (unverified) and its host."""
        host = urlsplit(self.response_uri).netloc
        return f"{self.client_name} ({host})" if self.client_name else host


@dataclass(frozen=True, slots=True)
class Match:
    """The credential chosen for a query and exactly what presenting it reveals."""

    query: CredentialRequest
    held: HeldCredential
    disclose: tuple[Concrete, ...]  # paths of the Disclosures to present
    revealed: tuple[tuple[str, Any], ...]  # (claim path as text, value) a person reads


def _bad(message: str) -> WalletError:
    return WalletError("request_malformed", message)


def _one(query: dict[str, list[str]], name: str, *, required: bool = True) -> str | None:
    values = query.get(name)
    if not values:
        if required:
            raise _bad(f"The verifier's request has no {name}.")
        return None
    if len(values) != 1:
        raise _bad(f"The verifier's request has {name} more than once.")
    return values[0]


def _json(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _bad(f"The request's {name} is not JSON.") from exc


def _pattern(raw: Any) -> Pattern:
    if not isinstance(raw, list) or not raw:
        raise _bad("A DCQL claims path must be a non-empty array.")
    for part in raw:
        if (part is not None and not isinstance(part, str | int)) or isinstance(part, bool):
            raise _bad("A DCQL claims path may hold only names, indexes and null.")
    return tuple(raw)


def _queries(dcql: Any) -> tuple[CredentialRequest, ...]:
    if not isinstance(dcql, dict) or not isinstance(dcql.get("credentials"), list):
        raise _bad("The request's dcql_query has no credentials array.")
    if "credential_sets" in dcql:
        raise WalletError("request_unsupported", "DCQL credential_sets are not supported.")
    out: list[CredentialRequest] = []
    for item in dcql["credentials"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise _bad("A DCQL credential query has no id.")
        if item.get("format") != FORMAT:
            raise WalletError(
                "request_unsupported",
                f"The verifier asks for a {item.get('format')!s} credential; this wallet holds"
                f" {FORMAT} only.",
            )
        if "claim_sets" in item:
            raise WalletError("request_unsupported", "DCQL claim_sets are not supported.")
        vcts = (item.get("meta") or {}).get("vct_values")
        if not isinstance(vcts, list) or not vcts or not all(isinstance(v, str) for v in vcts):
            raise _bad(f"The credential query {item['id']} names no vct_values.")
        claims = item.get("claims") or []
        if not isinstance(claims, list):
            raise _bad("A DCQL claims entry must be an array.")
        paths = tuple(_pattern(c.get("path") if isinstance(c, dict) else None) for c in claims)
        out.append(CredentialRequest(item["id"], tuple(vcts), paths))
    if not out:
        raise _bad("The request asks for no credential.")
    return tuple(out)


def parse_request(uri: str) -> PresentationRequest:
    """Parse and check an ``openid4vp://`` request (or https link with the same parameters)."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in (SCHEME, "https", "http"):
        raise _bad("That is not a presentation request (openid4vp://...).")
    query = parse_qs(parts.query, keep_blank_values=True)
    if "request_uri" in query or "request" in query:
        raise WalletError(
            "request_unsupported", "Signed requests (request / request_uri) are not supported."
        )
    client_id = _one(query, "client_id")
    assert client_id is not None
    if not client_id.startswith(CLIENT_ID_PREFIX):
        raise WalletError(
            "request_untrusted",
            f"The verifier's client_id uses an unsupported prefix; only {CLIENT_ID_PREFIX} is.",
        )
    response_uri = _one(query, "response_uri")
    if response_uri != client_id.removeprefix(CLIENT_ID_PREFIX):
        raise WalletError(
            "request_untrusted",
            "The request's response_uri is not the address in its client_id: it may send your"
            " data elsewhere, so it is refused.",
        )
    assert response_uri is not None
    web.check_url(response_uri, "verifier's response_uri")
    if _one(query, "response_type") != "vp_token":
        raise WalletError("request_unsupported", "Only response_type=vp_token is supported.")
    if _one(query, "response_mode") != "direct_post":
        raise WalletError("request_unsupported", "Only response_mode=direct_post is supported.")
    metadata = _json(_one(query, "client_metadata", required=False), "client_metadata") or {}
    if not isinstance(metadata, dict):
        raise _bad("The request's client_metadata is not a JSON object.")
    formats = metadata.get("vp_formats_supported")
    if isinstance(formats, dict):
        algs = (formats.get(FORMAT) or {}).get("kb-jwt_alg_values")
        if FORMAT not in formats or (isinstance(algs, list) and "ES256" not in algs):
            raise WalletError(
                "request_unsupported", "The verifier does not accept ES256-bound dc+sd-jwt."
            )
    nonce, state = _one(query, "nonce"), _one(query, "state")
    if not nonce or not state:
        raise _bad("The request's nonce and state must not be empty.")
    name = metadata.get("client_name")
    return PresentationRequest(
        client_id,
        response_uri,
        nonce,
        state,
        name if isinstance(name, str) else None,
        _queries(_json(_one(query, "dcql_query"), "dcql_query")),
    )


def fetch_request(uri: str, *, http: httpx.Client | None = None) -> PresentationRequest:
    """:func:`parse_request`, following an https link that redirects to ``openid4vp://``."""
    parts = urlsplit(uri.strip())
    if parts.scheme in ("https", "http") and "client_id" not in parse_qs(parts.query):
        owned = http is None
        client = http or web.client()
        try:
            response = web.get(client, uri.strip(), "presentation request link")
        finally:
            if owned:
                client.close()
        location = response.headers.get("location", "")
        if not (response.is_redirect and location.startswith(f"{SCHEME}:")):
            raise _bad("The link does not lead to a presentation request.")
        return parse_request(location)
    return parse_request(uri)


# --- matching --------------------------------------------------------------------------------


def _covers(pattern: Pattern, path: Concrete) -> bool:
    """``path`` lies at or under ``pattern``."""
    return len(path) >= len(pattern) and all(
        p is None or p == c for p, c in zip(pattern, path, strict=False)
    )


def _leads_to(path: Concrete, pattern: Pattern) -> bool:
    """``path`` is an ancestor of what ``pattern`` names (its Disclosure must come too)."""
    return len(path) < len(pattern) and _covers(pattern[: len(path)], path)


def _plain(node: Any, path: Concrete = ()) -> Iterable[tuple[Concrete, Any]]:
    """Every always-visible claim of the issuer-signed payload, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ENVELOPE and not path:
                continue
            if key in ("_sd", "_sd_alg"):
                continue
            yield (*path, key), value
            yield from _plain(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict) and set(value) == {"..."}:
                continue
            yield (*path, i), value
            yield from _plain(value, (*path, i))


def _shown(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("_sd", "_sd_alg")} or "(object)"
    return value


def _text(path: Concrete) -> str:
    return ".".join(str(p) for p in path)


def _try(query: CredentialRequest, held: HeldCredential) -> Match | None:
    disclosures: list[HeldDisclosure] = held_disclosures(held.credential)
    plain = list(_plain(held.payload()))
    chosen: set[Concrete] = set()
    revealed: dict[Concrete, Any] = {}
    for pattern in query.paths:
        found = False
        for d in disclosures:
            if _covers(pattern, d.path):
                chosen.add(d.path)
                revealed[d.path] = _shown(d.disclosure.value)
                found = True
            elif _leads_to(d.path, pattern):
                chosen.add(d.path)
        for path, value in plain:
            if _covers(pattern, path) and not isinstance(value, dict | list):
                revealed[path] = value
                found = True
        if not found:
            return None
    return Match(
        query,
        held,
        tuple(sorted(chosen, key=_text)),
        tuple((_text(p), v) for p, v in sorted(revealed.items(), key=lambda kv: _text(kv[0]))),
    )


def match(
    request: PresentationRequest, held: Sequence[HeldCredential], now: dt.datetime
) -> list[Match]:
    """One usable credential per query (newest first), or ``no_matching_credential``."""
    matches: list[Match] = []
    for query in request.queries:
        usable = [h for h in held if h.vct in query.vct_values and h.state_at(now) == "valid"]
        found = next((m for h in usable if (m := _try(query, h)) is not None), None)
        if found is None:
            kinds = ", ".join(query.vct_values)
            why = "none that is valid" if any(h.vct in query.vct_values for h in held) else "none"
            raise WalletError(
                "no_matching_credential",
                f"The verifier asks for a {kinds} credential ({query.id}); this wallet holds"
                f" {why} with the claims it asks for.",
            )
        matches.append(found)
    return matches


# --- responding ------------------------------------------------------------------------------


def vp_token(
    store: WalletStore, request: PresentationRequest, matches: Sequence[Match], now: dt.datetime
) -> dict[str, list[str]]:
    """``{query id: [SD-JWT presentation with KB-JWT]}`` disclosing only the matched claims."""
    return {
        m.query.id: [
            present(
                m.held.credential,
                holder_key=store.holder_key,
                audience=request.client_id,  # the full client id, prefix included
                nonce=request.nonce,
                iat=now,
                paths=m.disclose,
            )
        ]
        for m in matches
    }


def respond(
    store: WalletStore,
    request: PresentationRequest,
    matches: Sequence[Match],
    *,
    now: dt.datetime,
    http: httpx.Client | None = None,
) -> dict[str, Any]:
    """POST the presentation (``direct_post``); the verifier's JSON answer, or WalletError."""
    form = {
        "vp_token": json.dumps(vp_token(store, request, matches, now), separators=(",", ":")),
        "state": request.state,
    }
    owned = http is None
    client = http or web.client()
    try:
        response = web.post(client, request.response_uri, "verifier's response_uri", data=form)
    finally:
        if owned:
            client.close()
    body = web.json_object(response, "verifier's answer")
    if response.status_code != 200:
        error = body.get("error") or f"HTTP {response.status_code}"
        raise WalletError(
            "verifier_refused",
            f"The verifier refused the presentation ({error}): " + web.error_text(body),
        )
    return body
